// Package keeper is the small parent process of `cutover serve`: it holds
// the listening sockets and the data directory, runs the daemon as its
// child, starts it again when it dies, and replaces it with a new binary
// on `cutover upgrade` (or SIGHUP) without a failed request. SIGUSR1 is
// passed on to the daemon (open the access log again, after logrotate),
// so that the keeper's pid, the one a service manager knows, may be
// signalled.
//
// # Process model
//
//	cutover serve (keeper)         holds: proxy, preview, tls sockets, keeper.lock,
//	 │                                    keeper.sock (upgrade requests)
//	 ├── cutover serve (daemon)    holds: daemon.lock, state.db, cutover.sock;
//	 │                             serves the proxy, supervises the instances
//	 └── (during an upgrade, a second daemon for a moment)
//	instances                      own process groups; outlive every daemon
//
// The keeper opens the listening sockets once (or takes them from systemd,
// see below) and passes them to each daemon it starts with the protocol
// systemd uses for socket activation: the sockets from fd 3, LISTEN_FDS
// counting them, LISTEN_FDNAMES naming them ("proxy", "preview", "tls", and
// TCPSocketName of each app's [[app.tcp]] listen address). LISTEN_PID
// names the keeper itself, since a parent cannot know its child's pid
// before the child runs; a daemon accepts that only when CUTOVER_KEEPER_FD
// is set too and LISTEN_PID is its parent. CUTOVER_KEEPER_FD is the
// daemon's end of a unix socketpair, the control link: one line per
// message, a word and an argument.
//
//	daemon → keeper  prepared VERSION   config read, state opened, sockets taken;
//	                                    waiting for daemon.lock if another holds it
//	                 ready              serving: proxy, preview, admin API
//	                 released [drain=D] | refused WHY
//	                                    answer to release; D: how long its
//	                                    open TCP connections may take to
//	                                    end after it is told to exit
//	                                    (ReleasedArg)
//	                 resumed | failed WHY
//	                 closed             a daemon that released, told to stop:
//	                                    it no longer accepts on the sockets
//	keeper → daemon  release            stop supervising and deploying, keep
//	                                    proxying, unlock daemon.lock
//	                 resume             take daemon.lock back and supervise again
//	                 stop               the keeper stops and the sockets outlive
//	                                    it: release, then proxy until the next
//	                                    daemon serves, and exit
//
// The sockets belong to the keeper: while no daemon runs — it crashed, was
// killed, is restarting — connections wait in the kernel's backlog and the
// next daemon accepts them. A kill -9 of the daemon costs only the requests
// it was carrying at that instant, never a refused connection.
//
// # Restarts
//
// A daemon that exits with status 0 was stopped on purpose (`cutover stop`,
// or a signal sent to it rather than to the keeper): the keeper exits too,
// with status 0, and restarts nothing — so `cutover stop` stays stopped.
// Any other end (a crash, kill -9, an error) is restarted at once; a daemon
// that dies again within stableAfter of its start waits a backoff that
// doubles from minBackoff to maxBackoff, and each restart is logged with
// the delay. The first daemon must become ready, or `cutover serve` fails
// with its reason: a config that does not load is an error to show, not to
// retry. (A first daemon ended by a signal is restarted like any other: it
// may have been serving already when it was killed.)
//
// SIGTERM or SIGINT to the keeper: it closes its own copies of the
// sockets and sends SIGTERM to the daemon, which drains and exits leaving
// the instances running (see package daemon); the keeper waits for it and
// exits. The socket then closes with the daemon's last accept, rather than
// holding connections in a backlog nobody will accept from.
//
// When the sockets came from systemd they outlive the keeper, and a stop
// is a restart's first half: the keeper tells the daemon "stop" instead,
// and exits as soon as it answers "released" (it stopped supervising and
// unlocked daemon.lock), without waiting for it, so that systemd starts
// the next `cutover serve` at once. The old daemon goes on accepting until
// the next one serves (it replaced cutover.sock; at most 10 s), then
// drains and exits by itself: a `systemctl restart` is then a handover as
// an upgrade is, and new requests wait neither for the old daemon's
// requests in flight nor for the new one's start.
//
// If the keeper itself dies (kill -9), each daemon
// reads EOF on its control link and stops the same way, releasing the
// sockets so that the next `cutover serve` can listen: a dead keeper is an
// outage of the proxy port until something starts it again (with systemd
// socket activation, not even that). The keeper is kept small for this
// reason: it reads the config once, at start, for the data directory and
// the listen addresses, then parses nothing but its own control lines,
// allocates little, and never touches a request.
//
// # Upgrade: the handover
//
// The binary started is the one at the path `cutover serve` was started
// from, resolved to an absolute path when the keeper starts (not
// /proc/self/exe, which follows the file the keeper runs even after it was
// replaced): install the new binary at that path (rename over it, or swap
// the symlink), then run `cutover upgrade`.
//
//  1. The keeper starts the new daemon N with the same sockets. N reads the
//     config, opens state.db (SQLite in WAL mode: two processes may have it
//     open), builds its proxy and engine, and says "prepared". It does not
//     touch an instance: daemon.lock is still the old daemon's.
//  2. The keeper tells the old daemon O "release". O refuses while a deploy
//     runs (or waits for promote/abort): the upgrade fails with that reason
//     and N is stopped. Otherwise O refuses every changing request of its
//     admin API from then on, stops its health checkers and supervisor
//     (instances keep running; none is restarted by O), unlocks daemon.lock
//     and says "released" — and goes on proxying with the routes it has.
//  3. N takes daemon.lock, recovers as any starting daemon does (adopts the
//     same instance processes by pid and start time), listens on the admin
//     socket, starts accepting on the proxy socket, and says "ready". From
//     now on both accept from the same sockets for a moment.
//  4. The keeper sends O SIGTERM: O stops accepting, says "closed",
//     finishes what it carries (see daemon's handoff) and exits. The
//     keeper answers `cutover upgrade` (and `cutover reload`) once O said
//     "closed" (or after closedTimeout, for an O of a version that does
//     not say it), so that every connection opened after the command
//     returns reaches N: a script that reloads a removed app and then
//     asks for its host gets N's answer, not O's old routes. O's open TCP
//     connections ([[app.tcp]]) get their port's drain_timeout from then;
//     the keeper kills O only if it is still there stopGrace (30 s) past
//     the D it announced with "released".
//
// If N exits, says failed, or is not ready within the timeout at any point
// before 4, the keeper kills it; had O released already, it is told
// "resume": it takes daemon.lock again and recovers into its own proxy, as
// at a start. O never stopped proxying, so the attempt costs no request,
// and `cutover upgrade` exits non-zero with N's reason.
//
// So at every instant at most one process holds daemon.lock, and only the
// holder supervises instances, runs deploys or answers changing API
// requests: two daemons never both restart an instance or both deploy.
// What can overlap — proxying — is read-only.
//
// # Pitfalls
//
//   - A change of proxy.listen, proxy.preview_listen or proxy.tls_listen
//     does not apply on upgrade: the sockets are the keeper's. Restart
//     `cutover serve` for it.
//   - Nor does a change of data_dir: the keeper passes its own in
//     CUTOVER_KEEPER_DATA_DIR and a daemon whose config names another one
//     fails, since it would take another daemon.lock and find no instance
//     there — two daemons supervising, one of them nothing.
//   - The control link and the sockets are inherited file descriptors. The
//     daemon dups each into a close-on-exec descriptor and closes the
//     original at once, or the app's instances would inherit them and keep
//     the sockets alive after everything else closed them.
//   - A socket's blocking mode is shared by every descriptor of it. The
//     keeper holds its sockets as files made with os.NewFile from a dup,
//     never with net.TCPListener.File: exec calls Fd on each file it passes,
//     and Fd of such a file puts the socket in blocking mode under the
//     daemons already serving on it, whose accept then blocks a thread and
//     whose Close waits for the next connection.
//   - While a new daemon waits for daemon.lock it holds state.db open but
//     writes nothing.
//   - A daemon started with `cutover serve --no-keeper` is the old single
//     process: it cannot be upgraded in place and its sockets die with it.
//
// # systemd
//
// Under systemd the keeper is the service's main process (Type=simple,
// ExecReload sends it SIGHUP, which upgrades). With socket activation the
// keeper takes the sockets systemd passes (LISTEN_PID is the keeper) and
// hands them on, so the sockets survive even the keeper. KillMode=process,
// or systemd would stop the instances with the service — and the old
// daemon finishing a restart's handover.
//
// # Why not cloudflare/tableflip
//
// tableflip upgrades a process by forking its successor and letting the
// parent exit: after an upgrade the process with the sockets is the new
// daemon, and nothing outlives a crash of it — that is the gap this
// package closes. Its model has no long-lived parent to restart a dead
// daemon and no place to keep the sockets while none runs; bending it to
// that would leave only its fd passing, which the systemd protocol above
// already gives. The design follows it where it fits: this doc, and one
// goroutine owning the state, talked to over channels.
package keeper
