// Command harness measures the proxies that bench/run started and writes
// the comparison table of cutover's benchmark.
//
// bench/run owns the processes: it starts the backend and every proxy,
// writes a targets file (one "name<TAB>base URL<TAB>pid,pid,..." line per
// target; the pids are those whose CPU time and memory count as the
// target's; an optional fourth field lists the only scenarios the target
// takes part in, as "get" for nginx-bare) and stops everything when the
// harness returns. The harness only drives load and reads /proc:
//
//   - throughput scenarios with wrk (one thread; see bench/README.md):
//     requests/s and the target's CPU µs per request, from utime+stime in
//     /proc/<pid>/stat before and after each run;
//   - fixed-rate latency with vegeta: p50 and p99 at a constant rate;
//   - idle connections: the targets' summed VmRSS while the harness holds
//     N keep-alive connections that each made one request;
//   - deploy under load (cutover only): `cutover deploy` run -deploys
//     times while vegeta keeps a fixed rate; failures and p99 inside the
//     deploy windows against the steady state. With -swap-backend, each
//     deploy is followed by a control swap (swap.go): a bare start of a
//     backend copy and stop of the previous one, measured the same way, to
//     show what the machine charges any deploy.
//
// vegeta runs in this process, so the harness runs at GOGC=2000 unless the
// environment sets GOGC (loadgc.go): its own collections would otherwise
// delay requests in flight several times a second.
//
// Targets are interleaved: every round runs each scenario on every target,
// starting with a different target each round, and the table reports the
// median over rounds, so a slow moment of the shared machine does not land
// on one target only.
package main
