// Package supervisor runs the instances of an app as operating-system
// processes (Linux only): it starts them with their port and environment,
// sends their output to a capped log file, restarts them when they crash, and
// stops them without leaving a process behind.
//
// # Process model
//
// An instance runs `/bin/sh -c` with Spec.Command as written, in its
// release directory, with `exec` put before the command's last simple
// command (shellScript), so the shell execs the app and the instance's pid
// is the app's own pid. Each instance is the leader of its own process group (Setpgid):
// the group id is the instance's pid, and everything the app forks stays in
// that group unless it deliberately leaves it (setsid, setpgid). The
// environment is exactly Spec.Env plus PORT, on which the app must listen
// ($PORT and ${PORT} in Spec.Env values are replaced by the port).
//
// # Logs
//
// Standard output and standard error are the write end of a pipe; the read
// end belongs to a log writer, a small process of its own per instance
// process (this binary re-executed as "cutover-log-writer <path> <cap>
// <instance>", see logfile.go), which appends what it reads to the log file
// and holds the size cap as the bytes are written: before a write that
// would take the file past Spec.LogMaxSize it renames the file to <log>.1
// and starts a new one, so the file never exceeds the cap and no line is
// lost in a copy. It was chosen over the alternatives because:
//   - a pipe read by the daemon would tie the app to the daemon: the
//     daemon's death would block it on a full pipe or kill it with SIGPIPE,
//     and the daemon is the proxy, whose CPU the copying would take;
//   - the file handed straight to the app (as before) can only be checked
//     from outside, once a second: an app writing 50 MiB/s took its 10 MiB
//     file to 50 MiB, and copy-truncate rotation spent the proxy's CPU
//     (5 % of a core measured at 50 MiB/s) and lost the lines written
//     during the copy;
//   - RLIMIT_FSIZE kills the app with SIGXFSZ, or fails its writes.
//
// The writer is in its own process group, not the instance's: the group
// kill after the instance's exit must not cut it off before it has written
// the instance's last words. It ends at end of input, when every process
// holding the write end (the instance and what it forked) is gone; it
// ignores SIGHUP, SIGINT and SIGTERM, and lives on when the daemon dies, as
// the instance does. Each takes about 12 MiB resident and, at 50 MiB/s of
// output, 7 % of a core; the daemon's own CPU stays at its idle level
// (bench/logcpu).
//
// A write that fails (a full disk) is dropped and counted, never blocking
// the app; so is one that would leave less than 5% of the file system (at
// most 64 MiB) free, because the daemon's state lives on the same data
// directory and a disk filled by the app's logs made its deploys fail. The
// writer reports the first failure and the recovery once each, on the
// daemon's standard error, and writes a line saying how many bytes were
// lost into the log once it can write again (it tries once a second
// meanwhile). One
// risk is new: an app whose log writer is killed by hand gets SIGPIPE (or
// EPIPE) on its next write, and is restarted as after any crash.
//
// # Boot priority
//
// With Spec.BootNice, each new process's group runs that much below the
// daemon's CPU priority until the caller, on its first passing health
// check, calls [Instance.EndBoot]. Linux keeps nice per thread: the whole
// group is set with setpriority(PRIO_PGRP), which reaches every thread of
// every process in it, and threads started later inherit their starter's
// value. Only a daemon allowed to raise a priority back lowers one
// ([PriorityRestorable]), so that no instance would serve at it.
// [BootNiceProblem] says why a BootNice would have no effect, for the
// daemon's log.
//
// # Surviving the daemon
//
// The daemon (cutover serve) may be restarted at any time, even by SIGKILL,
// and the app must keep serving meanwhile. Nothing ties an instance's life
// to the daemon's: no parent-death signal, no pipe, its own process group
// (so a Ctrl-C sent to the daemon's terminal group does not reach it). When
// the daemon dies, its instances are re-parented and keep running.
//
// What lets the next daemon find them is identity, recorded through
// Options.OnChange: the pid and the process start time (field 22 of
// /proc/<pid>/stat, in clock ticks since boot). A pid alone is not an
// identity, because the kernel recycles pids; pid and start time together
// are. [Supervisor.Adopt] checks both, and that the process still leads its
// own process group, before it takes an instance over; if the process is
// not that one any more it returns [ErrGone] and the caller starts a new
// instance.
//
// A daemon that exits on purpose calls [Supervisor.Detach]: monitoring ends,
// the instances keep running, and nothing is restarted any more.
//
// # Monitoring
//
// A process this Supervisor started is its child: a goroutine waits for it.
// An adopted process is not a child and cannot be waited for; its exit is
// learnt from a pidfd (pidfd_open, polled for readability), which refers to
// that very process whatever happens to its pid number. Where pidfd is not
// available (kernels before 5.3), /proc/<pid>/stat is polled every 200ms
// instead. Either way an unexpected exit is a crash: the instance is started
// again, with the same port, after an exponential backoff (Options.BackoffMin
// doubling up to Options.BackoffMax, reset once an instance has run for
// Options.BackoffReset).
//
// # No orphans
//
// When an instance's leader exits, for any reason, the whole process group is
// sent SIGKILL: workers or helpers the app forked never outlive it. For a
// child this happens while the leader is still an unreaped zombie, so its pid
// (which is the group id) cannot have been handed to another process. For
// an adopted process the leader has usually been reaped by init already; the
// group id stays reserved as long as any member is alive, so the sweep can
// only miss when the group is empty anyway (a pid is not reused within the
// microseconds between the exit and the sweep in practice).
//
// [Instance.Stop] sends Spec.StopSignal to the group, waits Spec.StopTimeout
// for the leader to exit, then kills the group with SIGKILL, and returns once
// the leader is gone. [KillGroup] does the same for a group recorded by an
// earlier daemon that is not going to be adopted. Processes that leave the
// group on purpose are beyond the reach of any of this.
package supervisor
