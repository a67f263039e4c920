// Package tcpproxy owns an app's TCP ports besides HTTP ([[app.tcp]]):
// a listener per entry whose connections are forwarded, byte for byte,
// to a port of one of the app's instances — a nailgun or SSH port beside
// the web one, as Clojars runs them behind a primary and a backup.
//
// The seams, which keep it out of the HTTP proxy, the fleet and the
// deploy engine:
//
//   - the fleet tells Ports of each instance's ports (Add, once its
//     process runs; Remove, before it stops), of its HTTP health
//     (SetHTTPHealthy) and of its crashes (Down);
//   - whoever moves HTTP traffic tells Ports which releases take new
//     connections (Route, with the HTTP weights): the release with the
//     most weight first, by instance number, then the others with weight
//     as its backups. A deploy's switch is one Route, a rollback or an
//     abort another;
//   - a deploy drains a retiring release or instances (Drain) before
//     it stops them: their open connections get each entry's
//     drain_timeout, then are closed; new ones never reach them.
//   - the daemon, when it exits (Shutdown), stops accepting and gives
//     the connections open through it each entry's drain_timeout, then
//     closes them: during an upgrade the next daemon takes the new
//     connections from the same sockets meanwhile.
//
// Each entry keeps its routing table (the instances that may take a new
// connection, in order) behind an atomic pointer, as the HTTP proxy does,
// so a switch is one store and an accept never takes a lock to route.
// A new connection goes to the first healthy instance of the table
// ("first") or the next one in turn ("round-robin"); a connect that is
// refused or times out is tried at once on the next healthy instance, then
// on those not called healthy, so no client is refused while any instance
// of the table accepts — a killed primary costs its own connections, not
// the next ones. A connection no instance takes (a stop-first switch,
// every instance down) is held and tried again as the table changes, up
// to the hold timeout (proxy.hold_timeout), as the HTTP proxy holds a
// request. Health is a TCP connect to the instance's port on
// app.health's interval and streaks, or the instance's HTTP health.
//
// Bytes are copied with io.Copy between the two *net.TCPConn, which Go
// does with splice(2) on Linux. Each direction ends with a half-close
// (CloseWrite) of the other side, so a client that shuts its write side
// still gets the whole answer; a connection's two goroutines end when
// both directions did, or when the connection is closed by a drain or
// Close. A PROXY protocol v1 or v2 header (github.com/pires/go-proxyproto)
// is written to the instance first when the entry asks for it.
package tcpproxy
