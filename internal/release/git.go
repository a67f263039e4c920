package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Output streams, as passed to GitOptions.Output.
const (
	StreamGit   = "git"
	StreamTest  = "test"
	StreamBuild = "build"
)

// tailLines is how many lines of a failing command's output a CommandError
// keeps.
const tailLines = 30

// ErrRefNotFound is wrapped by PrepareGit's error when the repository has no
// tag, branch or commit by the requested name.
var ErrRefNotFound = errors.New("no such tag, branch or commit")

// GitOptions says what PrepareGit checks out and how it is tested and built.
type GitOptions struct {
	// Repo is the repository: a local path or any URL git understands.
	Repo string
	// Ref is a tag, a branch or a commit (full or abbreviated sha) of Repo.
	// "refs/tags/" and "refs/heads/" prefixes are accepted.
	Ref string
	// Test is a shell command run with /bin/sh -c in the checkout before
	// Build; a non-zero exit fails the release. Empty means no test.
	Test string
	// Build is a shell command run with /bin/sh -c in the checkout after
	// Test passed; a non-zero exit fails the release. Empty means no build.
	Build string
	// Env holds KEY=VALUE entries added to cutover's own environment for
	// Test and Build; an entry here wins over the inherited one. Nil adds
	// nothing. CUTOVER_RELEASE_ID, CUTOVER_GIT_REF and CUTOVER_GIT_COMMIT are
	// always set. Variables that point git elsewhere (GIT_DIR and the like)
	// are not inherited.
	Env []string
	// Output, if not nil, receives each line of output of git, Test and Build
	// as it comes (stdout and stderr merged, without the line ending);
	// stream is StreamGit, StreamTest or StreamBuild. It is called from one
	// goroutine at a time, in order.
	Output func(stream, line string)
	// Record, if not nil, gives what the release's MetaFile holds instead
	// of its Meta alone, as PrepareMeta's record does.
	Record func(Meta) any
	// Started, if not nil, is told of the process group of each command
	// (git, Test, Build) as it starts; see Started.
	Started Started
}

// CommandError reports a test or build command that exited non-zero.
// Callers show Tail to say why.
type CommandError struct {
	// Stage is StreamTest or StreamBuild.
	Stage string
	// Command is the shell command that failed.
	Command string
	// ExitCode is the command's exit status; 128+n when killed by signal n.
	ExitCode int
	// Tail is the last lines (at most 30) of the command's output.
	Tail []string
}

// Error says which command failed and with which exit code.
func (e *CommandError) Error() string {
	return fmt.Sprintf("%s command %q failed with exit code %d", e.Stage, e.Command, e.ExitCode)
}

// PrepareGit checks out opts.Ref of opts.Repo into a new release directory,
// runs opts.Test then opts.Build in it, and returns the release id (which
// sorts by time and carries the ref: "20261122T093500-v1.4.2") and its
// metadata, also written to the release's MetaFile.
//
// The checkout is a `git clone --no-checkout` followed by `git checkout
// --detach` of the resolved commit: unlike a shallow `git fetch <ref>`, a
// clone resolves tags, branches and abbreviated commit shas alike, and a
// local repository is cloned with hard links, so it costs little. The .git
// directory is there while Test and Build run (so they may call `git
// describe`) and is removed before the release is renamed into place.
//
// A failing Test or Build returns a *CommandError; an unknown ref an error
// wrapping ErrRefNotFound. On any error, and when ctx is cancelled (which
// kills the running command's whole process group), nothing is left in
// releases/.
func (m *Manager) PrepareGit(ctx context.Context, opts GitOptions) (id string, meta Meta, err error) {
	if opts.Repo == "" || opts.Ref == "" {
		return "", Meta{}, fmt.Errorf("prepare release from git: repository and ref are required (got repo %q, ref %q)", opts.Repo, opts.Ref)
	}
	out := opts.Output
	if out == nil {
		out = func(string, string) {}
	}
	id = m.NewID(refLabel(opts.Ref))
	tmp := filepath.Join(m.dir, ".tmp-"+id+"-"+randHex(4))
	defer func() {
		if err != nil {
			os.RemoveAll(tmp) //nolint:errcheck // best effort; the error that matters is err
		}
	}()
	gitEnv := append(cleanEnv(os.Environ()), "GIT_TERMINAL_PROMPT=0")

	// The clone runs in cutover's working directory so that a relative
	// repository path means what the operator typed.
	if err := runGit(ctx, "", gitEnv, out, opts.Started, "clone", "--no-checkout", "--", opts.Repo, tmp); err != nil {
		return "", Meta{}, fmt.Errorf("clone git repository %s: %w", opts.Repo, err)
	}
	commit, err := resolveRef(ctx, tmp, gitEnv, opts.Ref)
	if err != nil {
		return "", Meta{}, fmt.Errorf("git ref %q in %s: %w", opts.Ref, opts.Repo, err)
	}
	if err := runGit(ctx, tmp, gitEnv, out, opts.Started, "-c", "advice.detachedHead=false", "checkout", "--detach", commit); err != nil {
		return "", Meta{}, fmt.Errorf("check out %s (%s) of %s: %w", opts.Ref, commit, opts.Repo, err)
	}

	cmdEnv := append(cleanEnv(os.Environ()), opts.Env...)
	cmdEnv = append(cmdEnv,
		"CUTOVER_RELEASE_ID="+id,
		"CUTOVER_GIT_REF="+opts.Ref,
		"CUTOVER_GIT_COMMIT="+commit,
	)
	for _, stage := range []struct{ name, command string }{{StreamTest, opts.Test}, {StreamBuild, opts.Build}} {
		if stage.command == "" {
			continue
		}
		tail, code, err := runStreamed(ctx, stage.name, tmp, cmdEnv, out, opts.Started, "/bin/sh", "-c", stage.command)
		if err != nil {
			return "", Meta{}, fmt.Errorf("release %s: %s command %q: %w", id, stage.name, stage.command, err)
		}
		if code != 0 {
			return "", Meta{}, &CommandError{Stage: stage.name, Command: stage.command, ExitCode: code, Tail: tail}
		}
	}

	if err := os.RemoveAll(filepath.Join(tmp, ".git")); err != nil {
		return "", Meta{}, fmt.Errorf("release %s: remove .git: %w", id, err)
	}
	meta = Meta{
		Source:    SourceGit,
		Repo:      opts.Repo,
		Ref:       opts.Ref,
		Commit:    commit,
		CreatedBy: createdBy(),
		CreatedAt: m.now().UTC(),
	}
	if err := WriteMeta(tmp, recorded(meta, opts.Record)); err != nil {
		return "", Meta{}, fmt.Errorf("release %s: %w", id, err)
	}
	// The checkout and the build's output, on disk before the release has
	// its name (see prepare).
	if err := syncTree(tmp); err != nil {
		return "", Meta{}, fmt.Errorf("release %s: %w", id, err)
	}
	if err := os.Rename(tmp, m.Dir(id)); err != nil {
		return "", Meta{}, fmt.Errorf("prepare release %s: %w", id, err)
	}
	if err := syncDir(m.dir); err != nil {
		return "", Meta{}, fmt.Errorf("prepare release %s: %w", id, err)
	}
	return id, meta, nil
}

// resolveRef returns the full commit sha ref names in the clone at dir.
// Git's own lookup order decides between a tag and a branch of the same
// name; a branch that is not the remote's default exists in a fresh clone
// only as origin/<name>, which is tried last.
func resolveRef(ctx context.Context, dir string, env []string, ref string) (string, error) {
	candidates := []string{ref}
	if name, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		candidates = append(candidates, "refs/remotes/origin/"+name)
	} else if !strings.HasPrefix(ref, "refs/") {
		candidates = append(candidates, "refs/remotes/origin/"+ref)
	}
	for _, c := range candidates {
		cmd := exec.CommandContext(ctx, "git", "rev-parse", "--verify", "--quiet", "--end-of-options", c+"^{commit}")
		cmd.Dir = dir
		cmd.Env = env
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		err := cmd.Run()
		if ctx.Err() != nil {
			return "", context.Cause(ctx)
		}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			continue // not this name
		}
		if err != nil {
			return "", fmt.Errorf("resolve: %w", err)
		}
		return strings.TrimSpace(stdout.String()), nil
	}
	return "", ErrRefNotFound
}

// refLabel is the human part of a release id built from ref:
// "refs/tags/v1.4.2" → "v1.4.2", "feature/login" → "feature-login".
func refLabel(ref string) string {
	ref = strings.TrimPrefix(ref, "refs/tags/")
	ref = strings.TrimPrefix(ref, "refs/heads/")
	ref = strings.ReplaceAll(ref, "/", "-")
	ref = strings.Trim(unsafeLabel().ReplaceAllString(ref, "-"), "-.")
	if len(ref) > 40 {
		ref = ref[:40]
	}
	if ref == "" {
		ref = "git"
	}
	return ref
}

// cleanEnv drops the variables that point git at another repository. They
// are set when cutover runs from a git hook (a post-receive deploy), and
// would make the clone, or a build's `git describe`, use the wrong one.
func cleanEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
			"GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_PREFIX":
			continue
		}
		out = append(out, kv)
	}
	return out
}

func lastLine(tail []string) string {
	for i := len(tail) - 1; i >= 0; i-- {
		if s := strings.TrimSpace(tail[i]); s != "" {
			return ": " + s
		}
	}
	return ""
}
