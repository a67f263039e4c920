package config

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestValidateGood covers the good values of the keys for strategies,
// canary bounds, hooks, preview, git sources and shared paths: what each
// parses to, and the edges of what is allowed.
func TestValidateGood(t *testing.T) {
	tests := []struct {
		name string
		doc  string // appended to base
		want *Config
	}{
		{"rolling one at a time", "[deploy]\nstrategy = \"rolling\"\nbatch = 1\n", want(func(c *Config) { c.Deploy.Strategy = "rolling" })},
		{"batch count", "[deploy]\nbatch = 64\n", want(func(c *Config) { c.Deploy.Batch = int64(64); c.Deploy.BatchCount = 64 })},
		{"batch percent", "[deploy]\nbatch = \"50%\"\n", want(func(c *Config) { c.Deploy.Batch = "50%"; c.Deploy.BatchCount = 0; c.Deploy.BatchPercent = 50 })},
		{"batch all", "[deploy]\nbatch = \"100%\"\n", want(func(c *Config) { c.Deploy.Batch = "100%"; c.Deploy.BatchCount = 0; c.Deploy.BatchPercent = 100 })},
		{"batch percent with spaces", "[deploy]\nbatch = \" 1 % \"\n", want(func(c *Config) { c.Deploy.Batch = " 1 % "; c.Deploy.BatchCount = 0; c.Deploy.BatchPercent = 1 })},
		{"canary with default steps", "[deploy]\nstrategy = \"canary\"\n", want(func(c *Config) { c.Deploy.Strategy = "canary" })},
		{"stop-first", "[deploy]\nstrategy = \"stop-first\"\n", want(func(c *Config) { c.Deploy.Strategy = "stop-first" })},
		{
			"steps replace the default",
			"[deploy]\nstrategy = \"canary\"\nsteps = [\"10%\"]\n",
			want(func(c *Config) {
				c.Deploy.Strategy = "canary"
				c.Deploy.Steps = []string{"10%"}
				c.Deploy.StepPercents = []int{10}
			}),
		},
		{
			"steps at the edges",
			"[deploy]\nsteps = [\"1%\", \"2%\", \"99%\"]\n",
			want(func(c *Config) { c.Deploy.Steps = []string{"1%", "2%", "99%"}; c.Deploy.StepPercents = []int{1, 2, 99} }),
		},
		{
			"no steps outside canary",
			"[deploy]\nstrategy = \"rolling\"\nsteps = []\n",
			want(func(c *Config) {
				c.Deploy.Strategy = "rolling"
				c.Deploy.Steps = []string{}
				c.Deploy.StepPercents = nil
			}),
		},
		{
			"bounds at their edges",
			"[deploy]\nwatch = \"0s\"\nmax_error_rate = 0\nconfidence = 0.5000001\nmin_latency_effect = 0\nmin_error_effect = 0\nmin_requests = 1\n",
			want(func(c *Config) {
				c.Deploy.MaxErrorRate = 0
				c.Deploy.Confidence = 0.5000001
				c.Deploy.MinLatencyEffect = 0
				c.Deploy.MinErrorEffect = 0
				c.Deploy.MinRequests = 1
			}),
		},
		{
			"bounds loose",
			"[deploy]\nstep_time = \"2m\"\nwatch = \"10m\"\nmax_error_rate = 1\nconfidence = 0.9999\nmin_latency_effect = 1e3\nmin_error_effect = 1\nmin_requests = 1000\n",
			want(func(c *Config) {
				c.Deploy.StepTime = Duration{2 * time.Minute}
				c.Deploy.Watch = Duration{10 * time.Minute}
				c.Deploy.MaxErrorRate = 1
				c.Deploy.Confidence = 0.9999
				c.Deploy.MinLatencyEffect = 1000
				c.Deploy.MinErrorEffect = 1
				c.Deploy.MinRequests = 1000
			}),
		},
		{
			"hooks",
			"[deploy]\nbefore_switch = \"curl -fsS http://127.0.0.1:$PORT/up\"\nafter_switch = \"bin/notify \\\"$CUTOVER_RELEASE\\\"\"\nhook_timeout = \"90s\"\n",
			want(func(c *Config) {
				c.Deploy.BeforeSwitch = "curl -fsS http://127.0.0.1:$PORT/up"
				c.Deploy.AfterSwitch = `bin/notify "$CUTOVER_RELEASE"`
				c.Deploy.HookTimeout = Duration{90 * time.Second}
			}),
		},
		{
			"preview port",
			"[proxy]\npreview_listen = \":8081\"\n[deploy]\npreview_timeout = \"2h\"\n",
			want(func(c *Config) { c.Proxy.PreviewListen = ":8081"; c.Deploy.PreviewTimeout = Duration{2 * time.Hour} }),
		},
		{
			"preview on another address, same port",
			"[proxy]\npreview_listen = \"127.0.0.2:8080\"\n",
			want(func(c *Config) { c.Proxy.PreviewListen = "127.0.0.2:8080" }),
		},
		{
			"head bounds at their edges",
			"[proxy]\nmax_request_line = 256\nmax_header_bytes = 1024\n",
			want(func(c *Config) { c.Proxy.MaxRequestLine = 256; c.Proxy.MaxHeaderBytes = 1024 }),
		},
		{
			"head bounds at their most",
			"[proxy]\nmax_request_line = 1048576\nmax_header_bytes = 1048576\n",
			want(func(c *Config) { c.Proxy.MaxRequestLine = 1 << 20; c.Proxy.MaxHeaderBytes = 1 << 20 }),
		},
		{
			"trusted proxies",
			"[proxy]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.10\", \"2001:db8::/32\", \"::1\"]\n",
			want(func(c *Config) { c.Proxy.TrustedProxies = []string{"10.0.0.0/8", "192.0.2.10", "2001:db8::/32", "::1"} }),
		},
		{
			"h2c with a gRPC health check",
			"upstream_protocol = \"h2c\"\n[app.health]\ngrpc = true\ngrpc_service = \"shop.Cart\"\n",
			want(func(c *Config) {
				c.App.UpstreamProtocol = UpstreamH2C
				c.App.Health.GRPC = true
				c.App.Health.GRPCService = "shop.Cart"
			}),
		},
		{"h2c with an HTTP health check", "upstream_protocol = \"h2c\"\n", want(func(c *Config) { c.App.UpstreamProtocol = UpstreamH2C })},
		{"sticky off", "[proxy]\nsticky = false\n", want(func(c *Config) { c.Proxy.Sticky = false })},
		{"sticky on", "[proxy]\nsticky = true\n", want(func(*Config) {})},
		{
			"cookie and header",
			"[proxy]\ncookie = \"shop-version_2\"\nversion_header = \"X-Shop-Version\"\n",
			want(func(c *Config) { c.Proxy.Cookie = "shop-version_2"; c.Proxy.VersionHeader = "X-Shop-Version" }),
		},
		{"no version header", "[proxy]\nversion_header = \"\"\n", want(func(c *Config) { c.Proxy.VersionHeader = "" })},
		{
			"test and build",
			"[release]\ntest = \"make test\"\nbuild = \"make release\"\n",
			want(func(c *Config) { c.Release.Test = "make test"; c.Release.Build = "make release" }),
		},
		{
			"shared paths are cleaned",
			"[release]\nshared = [\"public/uploads\", \"./tmp/\", \"log\", \"logs\", \"a/../b\"]\n",
			want(func(c *Config) { c.Release.Shared = []string{"public/uploads", "tmp", "log", "logs", "b"} }),
		},
		{"no shared paths", "[release]\nshared = []\n", want(func(c *Config) { c.Release.Shared = []string{} })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse("cutover.toml", "/srv/shop", []byte(base+tt.doc))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestValidateErrors covers each error of the keys for strategies, canary
// bounds, hooks, preview, git sources and shared paths. Every doc is
// appended to base, so its first line is line 4.
func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string // every error, one a line, as Error() prints them
	}{
		// [app]
		{"env_file type", "env_file = 1\n", `cutover.toml:4: app.env_file: must be a string, got the integer 1`},
		{"env_file typo", "envfile = \".env\"\n", `cutover.toml:4: app.envfile: unknown key; did you mean "app.env_file"?`},
		{"upstream_protocol unknown", "upstream_protocol = \"h2\"\n", `cutover.toml:4: app.upstream_protocol: must be "http1" (HTTP/1.1 to the instances) or "h2c" (HTTP/2 without TLS, for a gRPC server), got "h2"`},
		{"health.grpc without h2c", "[app.health]\ngrpc = true\n", `cutover.toml:5: app.health.grpc: needs upstream_protocol = "h2c" in the same table: the gRPC health protocol runs over HTTP/2, and an app spoken to over HTTP/1.1 is checked with a GET of health.path`},
		{"health.grpc_service without grpc", "upstream_protocol = \"h2c\"\n[app.health]\ngrpc_service = \"shop.Cart\"\n", `cutover.toml:6: app.health.grpc_service: is the service the gRPC health check asks about; set health.grpc = true too, or remove it`},
		// [proxy]
		{"sticky string", "[proxy]\nsticky = \"yes\"\n", `cutover.toml:5: proxy.sticky: must be true or false, got the string "yes"`},
		{"sticky number", "[proxy]\nsticky = 1\n", `cutover.toml:5: proxy.sticky: must be true or false, got the integer 1`},
		{"sticky typo", "[proxy]\nstickey = true\n", `cutover.toml:5: proxy.stickey: unknown key; did you mean "proxy.sticky"?`},
		{"preview_listen equals the default listen", "[proxy]\npreview_listen = \"127.0.0.1:8080\"\n", `cutover.toml:5: proxy.preview_listen: must differ from proxy.listen ("127.0.0.1:8080")`},
		{"preview_listen equals listen", "[proxy]\nlisten = \":80\"\npreview_listen = \":80\"\n", `cutover.toml:6: proxy.preview_listen: must differ from proxy.listen (":80")`},
		{"preview_listen without port", "[proxy]\npreview_listen = \"8081\"\n", `cutover.toml:5: proxy.preview_listen: must be host:port such as "127.0.0.1:8081", got "8081"`},
		{"preview_listen port name", "[proxy]\npreview_listen = \"127.0.0.1:http\"\n", `cutover.toml:5: proxy.preview_listen: port must be a number from 0 to 65535 (0 picks a free one), got "http"`},
		{"preview_listen port range", "[proxy]\npreview_listen = \":65536\"\n", `cutover.toml:5: proxy.preview_listen: port must be a number from 0 to 65535 (0 picks a free one), got "65536"`},
		{"request_buffer_memory zero", "[proxy]\nrequest_buffer_memory = 0\n", `cutover.toml:5: proxy.request_buffer_memory: must be at least 1 byte, got 0`},
		{"max_request_body negative", "[proxy]\nmax_request_body = -1\n", `cutover.toml:5: proxy.max_request_body: must be 0 (no limit) or a number of bytes, got -1`},
		{"client_body_timeout zero", "[proxy]\nclient_body_timeout = \"0s\"\n", `cutover.toml:5: proxy.client_body_timeout: must be a positive duration such as "10s", got "0s"`},
		{"cookie with a space", "[proxy]\ncookie = \"my cookie\"\n", `cutover.toml:5: proxy.cookie: must be a cookie name of letters, digits, '-' and '_', got "my cookie"`},
		{"cookie with a separator", "[proxy]\ncookie = \"v=1\"\n", `cutover.toml:5: proxy.cookie: must be a cookie name of letters, digits, '-' and '_', got "v=1"`},
		{"empty cookie", "[proxy]\ncookie = \"\"\n", `cutover.toml:5: proxy.cookie: must be a cookie name of letters, digits, '-' and '_', got ""`},
		{"unknown http2 server", "[proxy]\nhttp2_server = \"nghttp2\"\n", `cutover.toml:5: proxy.http2_server: must be "cutover" or "go" (default "cutover"), got "nghttp2"`},
		{"version_header with underscore", "[proxy]\nversion_header = \"X_Release\"\n", `cutover.toml:5: proxy.version_header: must be a header name such as "X-Cutover-Release", or "" for none, got "X_Release"`},
		{"version_header with colon", "[proxy]\nversion_header = \"X-Release:\"\n", `cutover.toml:5: proxy.version_header: must be a header name such as "X-Cutover-Release", or "" for none, got "X-Release:"`},
		{"trusted_proxies not an address", "[proxy]\ntrusted_proxies = [\"10.0.0.0/8\", \"lb.internal\"]\n", `cutover.toml:5: proxy.trusted_proxies: entry 2 ("lb.internal") must be a network such as "10.0.0.0/8" or an address such as "192.0.2.10"`},
		{"trusted_proxies bad prefix", "[proxy]\ntrusted_proxies = [\"10.0.0.0/33\"]\n", `cutover.toml:5: proxy.trusted_proxies: entry 1 ("10.0.0.0/33") must be a network such as "10.0.0.0/8" or an address such as "192.0.2.10"`},
		{"trusted_proxies a string", "[proxy]\ntrusted_proxies = \"10.0.0.0/8\"\n", `cutover.toml:5: proxy.trusted_proxies: must be an array of strings such as ["a", "b"], got the string "10.0.0.0/8"`},
		{"max_header_bytes too small", "[proxy]\nmax_header_bytes = 1023\n", `cutover.toml:5: proxy.max_header_bytes: must be 1024 to 1048576 bytes (default 65536), got 1023`},
		{"max_header_bytes too large", "[proxy]\nmax_header_bytes = 1048577\n", `cutover.toml:5: proxy.max_header_bytes: must be 1024 to 1048576 bytes (default 65536), got 1048577`},
		{"max_request_line too small", "[proxy]\nmax_request_line = 255\n", `cutover.toml:5: proxy.max_request_line: must be 256 bytes to max_header_bytes (65536) (default 8192), got 255`},
		{"max_request_line over max_header_bytes", "[proxy]\nmax_request_line = 4096\nmax_header_bytes = 2048\n", `cutover.toml:5: proxy.max_request_line: must be 256 bytes to max_header_bytes (2048) (default 8192), got 4096`},
		{"max_header_bytes as a string", "[proxy]\nmax_header_bytes = \"64k\"\n", `cutover.toml:5: proxy.max_header_bytes: must be an integer, got the string "64k"`},
		// [deploy] strategy and batch
		{"strategy case", "[deploy]\nstrategy = \"Canary\"\n", `cutover.toml:5: deploy.strategy: must be "bluegreen", "rolling", "canary" or "stop-first", got "Canary"`},
		{"stop-first with a watch", "[deploy]\nstrategy = \"stop-first\"\nwatch = \"5m\"\n", `cutover.toml:6: deploy.watch: must be "0s" with strategy "stop-first": the old release is stopped before the new one boots, so nothing stays warm to go back to`},
		{"batch zero", "[deploy]\nbatch = 0\n", `cutover.toml:5: deploy.batch: must be between 1 and 64 instances, or a percentage such as "50%", got 0`},
		{"batch negative", "[deploy]\nbatch = -1\n", `cutover.toml:5: deploy.batch: must be between 1 and 64 instances, or a percentage such as "50%", got -1`},
		{"batch too many", "[deploy]\nbatch = 65\n", `cutover.toml:5: deploy.batch: must be between 1 and 64 instances, or a percentage such as "50%", got 65`},
		{"batch over 100%", "[deploy]\nbatch = \"150%\"\n", `cutover.toml:5: deploy.batch: must be a number of instances such as 1, or a percentage such as "50%": "150%" is not a percentage from 1% to 100%`},
		{"batch 0%", "[deploy]\nbatch = \"0%\"\n", `cutover.toml:5: deploy.batch: must be a number of instances such as 1, or a percentage such as "50%": "0%" is not a percentage from 1% to 100%`},
		{"batch fraction", "[deploy]\nbatch = \"12.5%\"\n", `cutover.toml:5: deploy.batch: must be a number of instances such as 1, or a percentage such as "50%": "12.5%" is not a percentage from 1% to 100%`},
		{"batch number as string", "[deploy]\nbatch = \"2\"\n", `cutover.toml:5: deploy.batch: must be a number of instances such as 1, or a percentage such as "50%": "2" is not a percentage such as "25%"`},
		{"batch word", "[deploy]\nbatch = \"half\"\n", `cutover.toml:5: deploy.batch: must be a number of instances such as 1, or a percentage such as "50%": "half" is not a percentage such as "25%"`},
		{"batch boolean", "[deploy]\nbatch = true\n", `cutover.toml:5: deploy.batch: must be an integer or a string such as "50%", got the boolean true`},
		{"batch float", "[deploy]\nbatch = 0.5\n", `cutover.toml:5: deploy.batch: must be an integer or a string such as "50%", got the float 0.5`},
		{"batch array", "[deploy]\nbatch = [1]\n", `cutover.toml:5: deploy.batch: must be an integer or a string such as "50%", got an array`},
		// [deploy] steps
		{"steps decreasing", "[deploy]\nsteps = [\"50%\", \"25%\"]\n", `cutover.toml:5: deploy.steps: step "25%": steps must increase, got it after 50%`},
		{"steps repeated", "[deploy]\nsteps = [\"25%\", \"25%\"]\n", `cutover.toml:5: deploy.steps: step "25%": steps must increase, got it after 25%`},
		{"steps at 100%", "[deploy]\nsteps = [\"50%\", \"100%\"]\n", `cutover.toml:5: deploy.steps: step "100%": steps are below 100% (the deploy ends at 100% by itself)`},
		{"steps without %", "[deploy]\nsteps = [\"5\"]\n", `cutover.toml:5: deploy.steps: "5" is not a percentage such as "25%"`},
		{"steps 0%", "[deploy]\nsteps = [\"0%\"]\n", `cutover.toml:5: deploy.steps: "0%" is not a percentage from 1% to 100%`},
		{"steps of integers", "[deploy]\nsteps = [1]\n", `cutover.toml:5: deploy.steps: must be an array of strings such as ["a", "b"], got an array holding the integer 1`},
		{"steps mixed", "[deploy]\nsteps = [\"5%\", 50]\n", `cutover.toml:5: deploy.steps: must be an array of strings such as ["a", "b"], got an array holding the integer 50`},
		{"steps nested", "[deploy]\nsteps = [[\"5%\"]]\n", `cutover.toml:5: deploy.steps: must be an array of strings such as ["a", "b"], got an array holding an array`},
		{"steps not an array", "[deploy]\nsteps = \"5%\"\n", `cutover.toml:5: deploy.steps: must be an array of strings such as ["a", "b"], got the string "5%"`},
		{"canary without steps", "[deploy]\nstrategy = \"canary\"\nsteps = []\n", `cutover.toml:6: deploy.steps: must list at least one step such as "5%" for the canary strategy`},
		{
			"every bad step",
			"[deploy]\nsteps = [\"x\", \"30%\", \"20%\", \"100%\"]\n",
			"cutover.toml:5: deploy.steps: \"x\" is not a percentage such as \"25%\"\n" +
				"cutover.toml:5: deploy.steps: step \"20%\": steps must increase, got it after 30%\n" +
				"cutover.toml:5: deploy.steps: step \"100%\": steps are below 100% (the deploy ends at 100% by itself)",
		},
		// [deploy] times and bounds
		{"step_time zero", "[deploy]\nstep_time = \"0s\"\n", `cutover.toml:5: deploy.step_time: must be a positive duration such as "10s", got "0s"`},
		{"step_time number", "[deploy]\nstep_time = 30\n", `cutover.toml:5: deploy.step_time: must be a duration string such as "10s", "1m30s" or "250ms", got the integer 30`},
		{"watch negative", "[deploy]\nwatch = \"-1s\"\n", `cutover.toml:5: deploy.watch: must not be negative (0 turns the watch off), got -1s`},
		{"max_error_rate over 1", "[deploy]\nmax_error_rate = 2\n", `cutover.toml:5: deploy.max_error_rate: must be a share between 0 and 1 such as 0.05, got 2`},
		{"max_error_rate negative", "[deploy]\nmax_error_rate = -0.01\n", `cutover.toml:5: deploy.max_error_rate: must be a share between 0 and 1 such as 0.05, got -0.01`},
		{"max_error_rate nan", "[deploy]\nmax_error_rate = nan\n", `cutover.toml:5: deploy.max_error_rate: must be a share between 0 and 1 such as 0.05, got NaN`},
		{"max_error_rate percent", "[deploy]\nmax_error_rate = \"5%\"\n", `cutover.toml:5: deploy.max_error_rate: must be a number, got the string "5%"`},
		{"confidence 1", "[deploy]\nconfidence = 1\n", `cutover.toml:5: deploy.confidence: must be a confidence level above 0.5 and below 1 such as 0.99, got 1`},
		{"confidence as percent", "[deploy]\nconfidence = 99\n", `cutover.toml:5: deploy.confidence: must be a confidence level above 0.5 and below 1 such as 0.99, got 99`},
		{"confidence nan", "[deploy]\nconfidence = nan\n", `cutover.toml:5: deploy.confidence: must be a confidence level above 0.5 and below 1 such as 0.99, got NaN`},
		{"min_latency_effect negative", "[deploy]\nmin_latency_effect = -0.1\n", `cutover.toml:5: deploy.min_latency_effect: must be a finite share of at least 0 such as 0.2 (20% slower; 0 turns the latency test off), got -0.1`},
		{"min_latency_effect inf", "[deploy]\nmin_latency_effect = inf\n", `cutover.toml:5: deploy.min_latency_effect: must be a finite share of at least 0 such as 0.2 (20% slower; 0 turns the latency test off), got +Inf`},
		{"min_error_effect over 1", "[deploy]\nmin_error_effect = 5\n", `cutover.toml:5: deploy.min_error_effect: must be a share between 0 and 1 such as 0.01 (one point more errors; 0 turns the test off), got 5`},
		{"min_error_effect boolean", "[deploy]\nmin_error_effect = false\n", `cutover.toml:5: deploy.min_error_effect: must be a number, got the boolean false`},
		{"max_p99_ratio removed", "[deploy]\nmax_p99_ratio = 3\n", `cutover.toml:5: deploy.max_p99_ratio: removed: the canary judge no longer compares p99s (noisy on a busy machine) but tests whether the new release's typical request is slower by at least min_latency_effect (default 0.2: 20%) at the confidence level confidence (default 0.99); delete this line, or set min_latency_effect (see docs/observability.md, "The canary judge")`},
		{"max_error_ratio removed", "[deploy]\nmax_error_ratio = 2\n", `cutover.toml:5: deploy.max_error_ratio: removed: the canary judge no longer compares error rates by ratio but tests whether the new release fails at least min_error_effect more often in points (default 0.01: one point) at the confidence level confidence (default 0.99); delete this line, or set min_error_effect (see docs/observability.md, "The canary judge")`},
		{"nothing close in deploy", "[deploy]\ncolour = 1\n", `cutover.toml:5: deploy.colour: unknown key; the keys allowed in [deploy] are strategy, batch, steps, step_time, watch, max_error_rate, confidence, min_latency_effect, min_error_effect, min_requests, before_switch, after_switch, hook_timeout, preview_timeout, breaking`},
		{"breaking unknown", "[deploy]\nbreaking = \"allow\"\n", `cutover.toml:5: deploy.breaking: must be "refuse" or "hold", got "allow"`},
		{"migrate_command without url", "[database]\nmigrate_command = \"./app -migrate\"\n", `cutover.toml:5: database.migrate_command: needs database.url: the command gets it in $DATABASE_URL, and the schema preview reads the database it changes`},
		{"url_env PORT", "[database]\nurl_env = \"PORT\"\n", `cutover.toml:5: database.url_env: must be an environment variable name other than PORT (letters, digits and '_'), got "PORT"`},
		{"relative sqlite with migrate_command", "[database]\nurl = \"sqlite://app.db\"\nmigrate_command = \"./app migrate\"\n", `cutover.toml:5: database.url: must be an absolute sqlite:///path when database.migrate_command is set: the command runs in the release directory, where a relative path names another file`},
		{"preview unknown", "[database]\npreview = \"yes\"\n", `cutover.toml:5: database.preview: must be "on" or "off", got "yes"`},
		// [release]
		{"repo type", "[release]\nrepo = true\n", `cutover.toml:5: release.repo: must be a string, got the boolean true`},
		{"test type", "[release]\ntest = [\"make\", \"test\"]\n", `cutover.toml:5: release.test: must be a string, got an array`},
		{"nothing close in release", "[release]\nrepository = \"x\"\n", `cutover.toml:5: release.repository: unknown key; the keys allowed in [release] are keep, repo, test, build, shared`},
		{"shared outside", "[release]\nshared = [\"../x\"]\n", `cutover.toml:5: release.shared: entry 1 ("../x") must be a path inside the release, such as "uploads" or "log"`},
		{"shared escaping", "[release]\nshared = [\"log\", \"a/../../x\"]\n", `cutover.toml:5: release.shared: entry 2 ("a/../../x") must be a path inside the release, such as "uploads" or "log"`},
		{"shared absolute", "[release]\nshared = [\"/var/uploads\"]\n", `cutover.toml:5: release.shared: entry 1 ("/var/uploads") must be a path inside the release, such as "uploads" or "log"`},
		{"shared empty", "[release]\nshared = [\"\"]\n", `cutover.toml:5: release.shared: entry 1 ("") must be a path inside the release, such as "uploads" or "log"`},
		{"shared release itself", "[release]\nshared = [\"./\"]\n", `cutover.toml:5: release.shared: entry 1 ("./") must be a path inside the release, such as "uploads" or "log"`},
		{"shared twice", "[release]\nshared = [\"uploads\", \"./uploads/\"]\n", `cutover.toml:5: release.shared: entry 2 ("./uploads/") overlaps entry 1 ("uploads"); list each shared path once, and none inside another`},
		{"shared nested", "[release]\nshared = [\"./public/\", \"log\", \"public/uploads\"]\n", `cutover.toml:5: release.shared: entry 3 ("public/uploads") overlaps entry 1 ("./public/"); list each shared path once, and none inside another`},
		{"shared nesting", "[release]\nshared = [\"public/uploads\", \"public\"]\n", `cutover.toml:5: release.shared: entry 2 ("public") overlaps entry 1 ("public/uploads"); list each shared path once, and none inside another`},
		{"shared not an array", "[release]\nshared = \"uploads\"\n", `cutover.toml:5: release.shared: must be an array of strings such as ["a", "b"], got the string "uploads"`},
		{
			"several shared",
			"[release]\nshared = [\"/a\", \"ok\", \"..\"]\n",
			"cutover.toml:5: release.shared: entry 1 (\"/a\") must be a path inside the release, such as \"uploads\" or \"log\"\n" +
				"cutover.toml:5: release.shared: entry 3 (\"..\") must be a path inside the release, such as \"uploads\" or \"log\"",
		},
		{
			"several sections, in line order",
			"[proxy]\nsticky = \"no\"\n[deploy]\nbatch = 0\nmax_error_rate = 5\n[release]\nshared = [\"/x\"]\n",
			// A type error stops the file before values are judged.
			`cutover.toml:5: proxy.sticky: must be true or false, got the string "no"`,
		},
		{
			"several values, in line order",
			"[proxy]\ncookie = \"a b\"\n[deploy]\nbatch = 0\nmax_error_rate = 5\n[release]\nshared = [\"/x\"]\n",
			"cutover.toml:5: proxy.cookie: must be a cookie name of letters, digits, '-' and '_', got \"a b\"\n" +
				"cutover.toml:7: deploy.batch: must be between 1 and 64 instances, or a percentage such as \"50%\", got 0\n" +
				"cutover.toml:8: deploy.max_error_rate: must be a share between 0 and 1 such as 0.05, got 5\n" +
				"cutover.toml:10: release.shared: entry 1 (\"/x\") must be a path inside the release, such as \"uploads\" or \"log\"",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse("cutover.toml", "/srv/shop", []byte(base+tt.doc))
			if err == nil {
				t.Fatalf("parse accepted it: %+v", c)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got %q\nwant %q", got, tt.want)
			}
			checkAllErrors(t, err)
		})
	}
}

func TestParsePercent(t *testing.T) {
	tests := []struct {
		in   string
		want int
		err  string
	}{
		{"1%", 1, ""},
		{"100%", 100, ""},
		{" 25 % ", 25, ""},
		{"25", 0, `"25" is not a percentage such as "25%"`},
		{"%", 0, `"%" is not a percentage from 1% to 100%`},
		{"101%", 0, `"101%" is not a percentage from 1% to 100%`},
		{"-5%", 0, `"-5%" is not a percentage from 1% to 100%`},
		{"5%%", 0, `"5%%" is not a percentage from 1% to 100%`},
	}
	for _, tt := range tests {
		got, err := parsePercent(tt.in)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if got != tt.want || gotErr != tt.err {
			t.Errorf("parsePercent(%q) = %d, %q; want %d, %q", tt.in, got, gotErr, tt.want, tt.err)
		}
	}
}

func TestIsLocalPath(t *testing.T) {
	for in, want := range map[string]bool{
		".":                          true,
		"../shop.git":                true,
		"/git/shop":                  true,
		"repos/a:b":                  true,
		"https://github.com/x/y.git": false,
		"ssh://git@host:22/x.git":    false,
		"file:///git/shop":           false,
		"git@github.com:x/y.git":     false,
		"host:shop":                  false,
	} {
		if got := isLocalPath(in); got != want {
			t.Errorf("isLocalPath(%q): got %v, want %v", in, got, want)
		}
	}
}

func TestTrustedPrefixes(t *testing.T) {
	p := Proxy{TrustedProxies: []string{"10.1.2.3/8", "192.0.2.10", "2001:db8::1/32", "::ffff:172.16.0.0/108", "::ffff:192.0.2.77"}}
	var got []string
	for _, pfx := range p.TrustedPrefixes() {
		got = append(got, pfx.String())
	}
	want := []string{"10.0.0.0/8", "192.0.2.10/32", "2001:db8::/32", "172.16.0.0/12", "192.0.2.77/32"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("TrustedPrefixes (-want +got):\n%s", diff)
	}
}
