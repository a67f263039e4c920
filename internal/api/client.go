package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/state"
)

// Error is an error answered by the daemon, with its kind.
type Error struct {
	Kind string
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// ErrNoDaemon means nothing answers on the socket.
var ErrNoDaemon = errors.New("the cutover daemon is not running")

// Client talks to a daemon over its unix socket.
type Client struct {
	socket string
	http   *http.Client
	app    string // the app every request is about; "" = the only one
}

// App returns a client whose requests are about the app called name (a
// daemon with several apps needs it; "" = the only app).
func (c *Client) App(name string) *Client {
	cc := *c
	cc.app = name
	return &cc
}

// Apps returns the names of the apps the daemon runs.
func (c *Client) Apps(ctx context.Context) ([]string, error) {
	var names []string
	err := c.App("").getJSON(ctx, "/v1/apps", &names)
	return names, err
}

// Certificates returns the daemon's lines about the certificates it
// obtains from an ACME CA, one per host name (none without ACME). A
// daemon older than the call answers 404: no lines.
func (c *Client) Certificates(ctx context.Context) ([]string, error) {
	var lines []string
	err := c.App("").getJSON(ctx, "/v1/certificates", &lines)
	return lines, err
}

// NewClient returns a client for the daemon listening on socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
	return &Client{socket: socket, http: &http.Client{Transport: tr}}
}

func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	if c.app != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "app=" + url.QueryEscape(c.app)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://cutover"+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w (no answer on %s); start it with `cutover serve`", ErrNoDaemon, c.socket)
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var eb errorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20)) //nolint:errcheck // the status says enough
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			return nil, &Error{Kind: KindFailed, Msg: fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))}
		}
		return nil, &Error{Kind: eb.Kind, Msg: eb.Error}
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (deploy.Status, error) {
	var st deploy.Status
	return st, c.getJSON(ctx, "/v1/status", &st)
}

// Releases lists releases, oldest first.
func (c *Client) Releases(ctx context.Context) ([]Release, error) {
	var out []Release
	return out, c.getJSON(ctx, "/v1/releases", &out)
}

// Deploys lists the deploy history, newest first.
func (c *Client) Deploys(ctx context.Context, limit int) ([]state.Deploy, error) {
	var out []state.Deploy
	return out, c.getJSON(ctx, fmt.Sprintf("/v1/deploys?limit=%d", limit), &out)
}

// Deploy starts a deploy or rollback and calls onEvent for each event as it
// arrives. It returns the final result event (or, for a preview deploy, the
// preview event: the deploy then waits in the daemon for Control); a failed
// deploy is returned as an *Error with the result's kind.
func (c *Client) Deploy(ctx context.Context, req deploy.Request, onEvent func(deploy.Event)) (deploy.Event, error) {
	resp, err := c.do(ctx, http.MethodPost, "/v1/deploys", req)
	if err != nil {
		return deploy.Event{}, err
	}
	ev, err := readEvents(resp, req.Preview, onEvent)
	return ev, c.whyEnded(ctx, err)
}

// Control sends promote, abort, pause or resume to the deploy in flight.
// An action the deploy cannot honour now is an *Error of kind
// KindRefused saying why. For pause and resume it returns the daemon's
// acknowledgement as an "info" event; for promote and abort it follows the
// deploy's events (the acknowledgement first) to its result (or its next
// preview) like Deploy.
func (c *Client) Control(ctx context.Context, action deploy.Action, onEvent func(deploy.Event)) (deploy.Event, error) {
	resp, err := c.do(ctx, http.MethodPost, "/v1/control", controlRequest{Action: action})
	if err != nil {
		return deploy.Event{}, err
	}
	if action == deploy.ActionPause || action == deploy.ActionResume {
		defer resp.Body.Close()
		var ans controlAnswer
		if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
			return deploy.Event{}, fmt.Errorf("decode the answer to %s: %w", action, err)
		}
		return deploy.Event{Type: "info", Message: ans.Message}, nil
	}
	ev, err := readEvents(resp, false, onEvent)
	return ev, c.whyEnded(ctx, err)
}

// errStreamEnded marks a deploy stream that ended without its result.
var errStreamEnded = errors.New("the deploy stream ended without a result")

// whyEnded says, for a deploy stream that ended without its result, what
// became of the deploy: a stream over the unix socket breaks when the
// daemon dies, and the keeper starts another at once, which records the
// deploy as interrupted; a deploy that goes on is in the daemon's status.
// Other errors are returned as they are.
func (c *Client) whyEnded(ctx context.Context, err error) error {
	if !errors.Is(err, errStreamEnded) || ctx.Err() != nil {
		return err
	}
	// Long enough for the keeper's restart backoff to let a daemon that
	// keeps dying try once more.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, serr := c.Status(ctx)
		if serr == nil {
			if d := st.Deploy; d != nil {
				return fmt.Errorf("%w; the deploy goes on in the daemon (deploy #%d of %s, step %s): follow it with `cutover status`", err, d.DeployID, d.Release, d.Step)
			}
			ds, derr := c.Deploys(ctx, 1)
			switch {
			case derr != nil || len(ds) == 0:
				return fmt.Errorf("%w; %s is live: see `cutover status`", err, orNone(st.Active))
			case ds[0].State == state.DeployInterrupted && ds[0].Release != "" && ds[0].Release == st.Active:
				return fmt.Errorf("%w: the daemon stopped during deploy #%d, after its switch, and it is recorded as interrupted; %s, the release it deployed, is live and the old release was stopped", err, ds[0].ID, st.Active)
			case ds[0].State == state.DeployInterrupted:
				return fmt.Errorf("%w: the daemon stopped during deploy #%d, which is recorded as interrupted; %s is live, what the deploy had started was stopped: deploy again", err, ds[0].ID, orNone(st.Active))
			default:
				return fmt.Errorf("%w; deploy #%d ended %s; %s is live: see `cutover status`", err, ds[0].ID, ds[0].State, orNone(st.Active))
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%w, and the daemon has not answered since (%v): see the log of `cutover serve`", err, serr)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func orNone(release string) string {
	if release == "" {
		return "no release"
	}
	return release
}

func readEvents(resp *http.Response, untilPreview bool, onEvent func(deploy.Event)) (deploy.Event, error) {
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	// Events are a line each, small but for a long output line: the
	// buffer starts small and grows as needed. Starting at 64 KiB cost
	// `cutover deploy` half a millisecond of page faults.
	sc.Buffer(make([]byte, 0, 4<<10), 4<<20)
	for sc.Scan() {
		var ev deploy.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return deploy.Event{}, fmt.Errorf("decode deploy event: %w", err)
		}
		if onEvent != nil {
			onEvent(ev)
		}
		if ev.Type == "preview" && untilPreview {
			return ev, nil
		}
		if ev.Type == "result" {
			if !ev.OK {
				return ev, &Error{Kind: ev.ErrorKind, Msg: ev.Message}
			}
			return ev, nil
		}
	}
	if err := sc.Err(); err != nil {
		return deploy.Event{}, fmt.Errorf("%w (%w)", errStreamEnded, err)
	}
	return deploy.Event{}, errStreamEnded
}

// Prune applies release retention now and returns the releases removed.
func (c *Client) Prune(ctx context.Context) ([]string, error) {
	resp, err := c.do(ctx, http.MethodPost, "/v1/releases/prune", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Removed []string `json:"removed"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("decode prune answer: %w", err)
	}
	return out.Removed, nil
}

// Logs copies the logs of a release (and optionally one instance) to w;
// with follow it goes on until ctx ends.
func (c *Client) Logs(ctx context.Context, release, instance string, lines int, follow bool, w io.Writer) error {
	q := url.Values{}
	q.Set("release", release)
	q.Set("instance", instance)
	q.Set("lines", fmt.Sprint(lines))
	if follow {
		q.Set("follow", "1")
	}
	resp, err := c.do(ctx, http.MethodGet, "/v1/logs?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Stop stops the app's instances and then the daemon.
func (c *Client) Stop(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodPost, "/v1/stop", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// DashboardLogin asks the daemon for a one-time login URL of its
// dashboard, valid once for 60 s.
func (c *Client) DashboardLogin(ctx context.Context) (string, error) {
	resp, err := c.do(ctx, http.MethodPost, "/v1/dashboard/login", nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var l DashboardLogin
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		return "", fmt.Errorf("decode dashboard login: %w", err)
	}
	return l.URL, nil
}
