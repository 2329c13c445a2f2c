// Package qubes is a typed Go API over the Qubes OS command-line tools found on
// PATH: qvm-run, qvm-check, qvm-create, qvm-prefs, qvm-tags, qvm-features,
// qvm-service, qvm-start, qvm-shutdown, qrexec-client (dom0) and
// qrexec-client-vm (VM), as described in shared/reference/qubes.md §1.6–1.7
// and §3.
//
// Every tool runs through a Runner (ExecRunner for real, which sets LC_ALL=C)
// with a context deadline. Arguments are validated before an argv is built, and
// no shell command line is ever assembled from data: the only strings handed to
// a remote shell are the commands callers pass to Client.Run on purpose.
//
// Failures are *CommandError values (argv, exit code, bounded stderr), wrapped
// together with a sentinel when the cause is known, so callers can tell "the VM
// does not exist" (ErrNoSuchVM), "the VM is not running" (ErrNotRunning,
// ErrPaused), "qrexec could not connect" (ErrQrexec), "policy refused the call"
// (ErrRefused) and "no such service" (ErrNoService) from a command that merely
// failed; check them with errors.Is.
//
// Long-lived channels for daemons (Client.OpenRun, OpenQrexec, OpenQrexecVM)
// return a *Stream: an io.ReadWriteCloser over the child's stdin and stdout with
// CloseWrite for half-close and Wait for the mapped exit status.
package qubes
