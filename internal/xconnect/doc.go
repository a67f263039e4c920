// Package xconnect turns on WebSocket over HTTP/2 (RFC 8441, the extended
// CONNECT method) in net/http's HTTP/2 server for this process, and for
// this process only.
//
// Go's HTTP/2 server announces SETTINGS_ENABLE_CONNECT_PROTOCOL, and
// accepts a request with the :protocol pseudo-header, only when the
// process started with "http2xconnect=1" in GODEBUG: net/http reads the
// variable once, in its package initialisation, and never again (Go issue
// 71128 turned it off by default because servers whose websocket library
// expects a hijackable HTTP/1.1 connection broke when browsers started
// using it). The proxy does handle such a stream (see package proxy,
// "Streams and websockets"), so cutover wants it on, however the daemon
// was started: by the keeper, by a service manager, `cutover serve
// --no-keeper` from a shell, or a test binary.
//
// # How
//
// The package's init adds "http2xconnect=1" to GODEBUG before net/http's
// init reads it, and Restore puts the variable back exactly as it was
// (unset, empty or its value) once net/http has read it. No re-exec is
// needed: Go initialises the packages of a program in the order of their
// import paths, each as soon as everything it imports is (the language
// specification, "Package initialization", since Go 1.21). This package
// imports only os and strings, which net/http imports too, and its path
// ("github.com/cutover/...") sorts before "net/http", so it is always
// initialised first. Package tlsfront, which imports both, calls Restore
// in its own init, which runs after net/http's: by the time main runs,
// GODEBUG is the user's again.
//
// That matters because everything the daemon starts inherits its
// environment: the app's instances (instance.Env starts from
// os.Environ), its hooks, builds and migration commands. They must get
// the GODEBUG the user gave, or none: a Go app behind cutover must not
// find its own HTTP/2 server changed by the proxy in front of it.
//
// A GODEBUG that names http2xconnect already (http2xconnect=0 to keep
// RFC 8441 off, say) is left alone: the user's choice wins.
package xconnect
