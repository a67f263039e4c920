// Package fleet owns the always-on instances of ONE app: the processes
// that serve its releases, from the moment a deploy (or recovery) asks for
// them until they are stopped. A daemon that runs several apps has one
// Fleet per app; the deploy engine of that app drives it.
//
// A Fleet owns, for each instance:
//
//   - its supervisor process (package supervisor): started with the
//     instance's environment ($PORT, CUTOVER_RELEASE, CUTOVER_APP, the
//     [app.env] of its release and CUTOVER_DRAIN_FILE), its log file, its
//     stop signal and stop_timeout;
//   - its proxy backend, added when the process runs and removed before
//     the stop signal (so no idle upstream connection delays a graceful
//     shutdown), and warmed with a share of the live connections when the
//     instance first answers;
//   - its ports of the app's TCP ports ([[app.tcp]]): a free port per
//     entry in the entry's port_env, kept for the instance's life (read
//     back from /proc/<pid>/environ when it is adopted), and told to the
//     TCP ports (tcpproxy.Ports) with its HTTP health, crashes and stop;
//     a batch drained by Drain waits for its TCP connections too;
//   - its health checker, which moves the backend in and out of rotation;
//   - crash restarts: a crash takes the backend out of rotation at once
//     and gives the restarted process a fresh checker, so it must pass
//     healthy_after checks again before it gets traffic;
//   - hung-instance restarts: an instance that served and then failed
//     restart_after checks in a row, or a restarted one that never turns
//     healthy within boot_timeout, is killed and restarted;
//   - its row in state (state.Instance), written on every change, so that
//     a daemon that restarts knows what runs; a write that fails is
//     reported to the owner (Options.StateFailed) and written again later
//     (Flush);
//   - its log path (<data_dir>/logs/<release>/<instance>.log: LogPath, the
//     one place that names it) and the trimming of the logs directory to
//     app.logs_max_total;
//   - its drain notice (CUTOVER_DRAIN_FILE), written when its drain begins
//     and removed when it stops or starts again;
//   - its status, as `cutover status` shows it.
//
// At start a Fleet recovers what a previous daemon left: it finds the
// instance processes of the app that still run (recorded in state or not,
// by a scan of /proc), adopts those of the live release, stops the others,
// and starts the instances the live release is missing.
//
// What a Fleet does not own: which release is live, the weights, the
// preview and the hold (traffic, the deploy engine's through the proxy),
// the deploy's plan and its journal. A Fleet never decides to start or
// stop a release by itself; it only keeps the instances it was given
// alive.
package fleet
