package e2e

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/load"
)

// gitRepo makes a repository whose tags are releases of the demo app: the
// build writes VERSION from version.in; the test fails when fail.flag
// exists.
func gitRepo(t *testing.T, dir string) string {
	t.Helper()
	repo := filepath.Join(dir, "repo")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(repo, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("init", "-q")
	write("test.sh", "echo running 3 tests\nif [ -f fail.flag ]; then echo 'FAIL: TestCheckout expected 200, got 500'; exit 3; fi\necho ok\n")
	write("build.sh", "cp version.in VERSION\necho built $(cat VERSION)\n")
	for _, v := range []string{"v1", "v2-broken", "v2"} {
		write("version.in", strings.TrimSuffix(v, "-broken")+"\n")
		if v == "v2-broken" {
			write("fail.flag", "")
		} else {
			os.Remove(filepath.Join(repo, "fail.flag"))
		}
		git("add", "-A")
		git("commit", "-q", "-m", "release "+v)
		git("tag", v)
	}
	return repo
}

// TestGitDeploys: a failing test stops a git deploy with nothing changed and
// its output shown; a passing one is built, booted and switched under load
// with no failed request, and `current` points at it.
func TestGitDeploys(t *testing.T) {
	e := newEnv(t, settings{instances: 2})
	repo := gitRepo(t, e.dir)
	cfg, _ := os.ReadFile(e.cfg)
	os.WriteFile(e.cfg, append(cfg, []byte("\n[release]\nrepo = \""+repo+"\"\ntest = \"sh ./test.sh\"\nbuild = \"sh ./build.sh\"\n")...), 0o644)
	e.serve()

	out, stderr, code := e.run("deploy", "--git", "v1")
	if code != 0 {
		t.Fatalf("deploy --git v1: exit %d\n%s%s", code, out, stderr)
	}
	if !strings.Contains(out, "built v1") || !strings.Contains(out, "running 3 tests") {
		t.Errorf("test and build output not shown:\n%s", out)
	}
	live := e.status().Active
	if !strings.HasSuffix(live, "-v1") {
		t.Fatalf("live release %q, want an id ending in -v1", live)
	}

	out, stderr, code = e.run("deploy", "--git", "v2-broken")
	if code != 1 || !strings.Contains(out+stderr, "FAIL: TestCheckout expected 200, got 500") || !strings.Contains(stderr, "exit code 3") {
		t.Errorf("deploy --git v2-broken: exit %d; want 1 with the failing test's output\n%s%s", code, out, stderr)
	}
	if st := e.status(); st.Active != live || len(st.Instances) != 2 {
		t.Errorf("a failed test changed what serves: %+v", st)
	}
	if ents, _ := filepath.Glob(filepath.Join(e.dir, "data", "releases", "*v2-broken*")); len(ents) != 0 {
		t.Errorf("the failed release left %v behind", ents)
	}

	gen := load.Start(load.Options{URL: e.url("/"), Rate: 300, FreshShare: 0.2, Timeout: 20 * time.Second, MaxDuration: time.Minute}, "git v2")
	out, stderr, code = e.run("deploy", "--git", "v2")
	time.Sleep(200 * time.Millisecond)
	rep := gen.Stop()
	if code != 0 {
		t.Fatalf("deploy --git v2: exit %d\n%s%s", code, out, stderr)
	}
	if rep.Total.Failed != 0 {
		t.Errorf("%d of %d requests failed during the git deploy: %v", rep.Total.Failed, rep.Total.Requests, rep.Total.Errors)
	}
	cur, err := os.Readlink(filepath.Join(e.dir, "data", "current"))
	if err != nil || !strings.HasSuffix(cur, "-v2") {
		t.Errorf("current → %q, %v; want the v2 release", cur, err)
	}
	if _, v, _, _ := get(e.url("/")); v != "v2" {
		t.Errorf("serving %q, want v2", v)
	}
	rels, _ := e.client.Releases(context.Background())
	var found bool
	for _, r := range rels {
		if r.ID == e.status().Active && r.Meta != nil && r.Meta.Ref == "v2" && len(r.Meta.Commit) == 40 {
			found = true
		}
	}
	if !found {
		t.Errorf("the v2 release does not record its ref and commit: %+v", rels)
	}
}

// TestPreview: `cutover deploy --preview` prints a token and a link; normal
// traffic stays on v1 and so do requests naming v2 (its id shows in every
// response, so it is no secret: before, it was all it took); requests
// with the token — header, or the link, which sets a cookie — reach v2;
// promote switches; a second preview aborted leaves no process.
func TestPreview(t *testing.T) {
	e := newEnv(t, settings{instances: 1})
	v1, v2, v3 := e.release("v1", ""), e.release("v2", ""), e.release("v3", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := e.run("deploy", "--preview", v2)
	if code != 0 {
		t.Fatalf("deploy --preview: exit %d\n%s%s", code, out, stderr)
	}
	var token, link string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "preview token: "); ok {
			token = v
		}
		if v, ok := strings.CutPrefix(l, "preview link:  "); ok && link == "" {
			link = v
		}
	}
	if len(token) < 22 || link != e.url("/?cutover_preview="+token) {
		t.Fatalf("deploy --preview printed token %q, link %q; want a token and %s:\n%s", token, link, e.url("/?cutover_preview=TOKEN"), out)
	}
	st := e.status()
	if st.Deploy == nil || st.Deploy.PreviewToken != token {
		t.Errorf("status during the preview: %+v; want the token %q", st.Deploy, token)
	}
	previewID := ""
	if st.Deploy != nil {
		previewID = st.Deploy.Release
	}
	for i := 0; i < 20; i++ {
		if _, v, _, _ := get(e.url("/")); v != "v1" {
			t.Fatalf("normal request %d answered by %q during preview, want v1", i, v)
		}
	}
	version := func(edit func(*http.Request), c *http.Client, url string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if edit != nil {
			edit(req)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		resp.Body.Close()
		return resp.Header.Get("X-App-Version")
	}
	for name, edit := range map[string]func(*http.Request){
		"header naming the preview": func(r *http.Request) { r.Header.Set("X-Cutover-Release", previewID) },
		"cookie naming the preview": func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "cutover_release", Value: previewID}) },
		"wrong token":               func(r *http.Request) { r.Header.Set("X-Cutover-Preview", wrongToken(token)) },
	} {
		if v := version(edit, http.DefaultClient, e.url("/")); v != "v1" {
			t.Errorf("%s (%s): answered by %q, want the live v1", name, previewID, v)
		}
	}
	if v := version(func(r *http.Request) { r.Header.Set("X-Cutover-Preview", token) }, http.DefaultClient, e.url("/")); v != "v2" {
		t.Errorf("request with the preview token header: answered by %q, want v2", v)
	}
	// A browser: the link, then the pages it links to, by the cookie.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	if v := version(nil, browser, link); v != "v2" {
		t.Errorf("the preview link: answered by %q, want v2", v)
	}
	if v := version(nil, browser, e.url("/about")); v != "v2" {
		t.Errorf("the next page, by the cookie the link set: answered by %q, want v2", v)
	}
	out, stderr, code = e.run("promote")
	if code != 0 || !strings.Contains(out, "is live") {
		t.Fatalf("promote: exit %d\n%s%s", code, out, stderr)
	}
	if _, v, _, _ := get(e.url("/")); v != "v2" {
		t.Errorf("after promote: %q, want v2", v)
	}

	res, err := e.client.Deploy(context.Background(), deploy.Request{Source: v3, Preview: true}, nil)
	if err != nil || res.Type != "preview" || res.PreviewToken == "" || res.PreviewToken == token {
		t.Fatalf("second preview: %+v %v; want a token of its own", res, err)
	}
	out, stderr, code = e.run("abort")
	if code != 0 {
		t.Fatalf("abort: exit %d\n%s%s", code, out, stderr)
	}
	st = e.status()
	if len(st.Instances) != 1 || !strings.HasSuffix(st.Instances[0].Release, "-v2") {
		t.Errorf("after abort, instances %+v; want only v2's", st.Instances)
	}
	if _, v, _, _ := get(e.url("/")); v != "v2" {
		t.Errorf("after abort: %q, want v2", v)
	}
	if n := countProcsIn(filepath.Join(e.dir, "data", "releases"), "-v3"); n != 0 {
		t.Errorf("%d v3 process(es) still running after abort", n)
	}
	_, stderr, code = e.run("promote")
	if code != 1 || !strings.Contains(stderr, "no deploy is in flight") {
		t.Errorf("promote with nothing in flight: exit %d, %q", code, stderr)
	}
}

// countProcsIn counts processes whose working directory is under dir and
// contains part.
func countProcsIn(dir, part string) int {
	n := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/cwd")
	for _, p := range procs {
		target, err := os.Readlink(p)
		if err == nil && strings.HasPrefix(target, dir) && strings.Contains(target, part) {
			n++
		}
	}
	return n
}

// TestRollbackRestoresEnvironmentAndSharedFiles: a rollback runs the old
// release with the environment it had; files written to a shared path
// survive deploys and rollbacks.
func TestRollbackRestoresEnvironmentAndSharedFiles(t *testing.T) {
	e := newEnv(t, settings{instances: 1, extraApp: "env_file = \"app.env\"\n[app.env]\nGREETING = \"hello from v1 config\"\n",
		extra: "[release]\nshared = [\"uploads\"]\n"})
	os.WriteFile(filepath.Join(e.dir, "app.env"), []byte("SECRET=one\n"), 0o600)
	v1, v2 := e.release("v1", ""), e.release("v2", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	put := func(name, body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPut, e.url("/files/"+name), strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT /files/%s: %v %v", name, resp, err)
		}
		resp.Body.Close()
	}
	put("avatar.png", "written by v1")

	cfg, _ := os.ReadFile(e.cfg)
	os.WriteFile(e.cfg, []byte(strings.Replace(string(cfg), "hello from v1 config", "hello from v2 config", 1)), 0o644)
	os.WriteFile(filepath.Join(e.dir, "app.env"), []byte("SECRET=two\n"), 0o600)
	if _, _, err := e.deploy(deploy.Request{Source: v2}); err != nil {
		t.Fatal(err)
	}
	check := func(when, version, greeting, secret string) {
		t.Helper()
		if _, v, body, _ := get(e.url("/env?name=GREETING")); v != version || strings.TrimSpace(body) != greeting {
			t.Errorf("%s: GREETING from %s = %q, want %q from %s", when, v, body, greeting, version)
		}
		if _, _, body, _ := get(e.url("/env?name=SECRET")); strings.TrimSpace(body) != secret {
			t.Errorf("%s: SECRET = %q, want %q", when, body, secret)
		}
		if _, _, body, _ := get(e.url("/files/avatar.png")); body != "written by v1" {
			t.Errorf("%s: shared file = %q, want %q", when, body, "written by v1")
		}
	}
	check("after deploy v2", "v2", "hello from v2 config", "two")
	if _, _, err := e.deploy(deploy.Request{Rollback: true}); err != nil {
		t.Fatal(err)
	}
	check("after rollback", "v1", "hello from v1 config", "one")

	out, _, _ := e.run("releases", "--json")
	if strings.Contains(out, "one") && strings.Contains(out, "\"SECRET\": \"one\"") {
		t.Errorf("releases --json prints a secret value:\n%s", out)
	}
	if !strings.Contains(out, "\"SECRET\": \"hmac-sha256:") {
		t.Errorf("releases --json does not list SECRET with a digest:\n%s", out)
	}
}

// TestVersionHeaderOff: version_header = "" keeps the release id, which
// tells when the app was deployed and what its source is called, out of
// every response. Before, the config was refused.
func TestVersionHeaderOff(t *testing.T) {
	e := newEnv(t, settings{instances: 1, extra: `version_header = ""`})
	v1 := e.release("v1", "")
	e.serve()
	if _, _, err := e.deploy(deploy.Request{Source: v1}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-App-Version") != "v1" {
		t.Errorf("answered by %q, want v1", resp.Header.Get("X-App-Version"))
	}
	for k, v := range resp.Header {
		if strings.HasPrefix(v[0], e.status().Active) {
			t.Errorf("response header %s: %q names the release; want none", k, v)
		}
	}
	if _, ok := resp.Header["X-Cutover-Release"]; ok {
		t.Errorf("X-Cutover-Release in the response with version_header = \"\"")
	}
}

// wrongToken returns token with its first character changed: never the
// token itself (a token may begin with any character, "A" included).
func wrongToken(token string) string {
	if strings.HasPrefix(token, "A") {
		return "B" + token[1:]
	}
	return "A" + token[1:]
}
