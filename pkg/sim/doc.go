// Package sim is the simulated Qubes OS machine that every end-to-end test of
// qubes-claw runs against. A machine is a directory: the qubes state (domains,
// their class, prefs, tags, features and power state), one filesystem tree per
// domain, the simulated Qubes commands (linked under their real names to the
// qubes-sim binary, which dispatches on argv[0]), per-domain supervisors that run
// every process of a domain, and a log of every simulated command invocation.
//
// The simulator must behave like the real tools (flags, output, exit codes, file
// locations) as described in shared/reference/qubes.md: if it is lax, every test
// built on it lies. Where Qubes loses state (an AppVM's root volume at shutdown,
// /run at every boot), the simulator loses it too.
//
// Layout of a machine directory DIR:
//
//	DIR/machine.json          identity and options (isolation mode)
//	DIR/qubes.json            qubes state, guarded by DIR/qubes.lock (flock)
//	DIR/bin/                  dom0 tools: qvm-*, qrexec-client, systemctl, loginctl
//	DIR/vmbin/                VM tools: qrexec-client-vm, systemctl, loginctl
//	DIR/domains/NAME/fs/      the domain's filesystem root ("/" inside the domain)
//	DIR/run/                  simulator runtime: supervisor sockets, pids
//	DIR/log/invocations.jsonl one JSON line per simulated command invocation
package sim
