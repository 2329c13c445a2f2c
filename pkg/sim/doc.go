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
//
// # Paths: what stays inside the machine
//
// Outside isolation mode a domain's processes run on the host as the host
// user, without a chroot or a mount namespace: "/" inside a domain is the
// host's "/". Only the simulated tools, the systemd layer and programs that
// honour QUBES_CLAW_ROOT (pkg/config) map domain paths into
// DIR/domains/NAME/fs. A command such as `echo x > /tmp/f` or `mkdir
// /root/.cache` run in a domain writes to the REAL host /tmp or /root,
// shared by every domain, every machine and every test. Tests must
// therefore name files through the environment the simulator sets, which
// points inside the domain's root:
//
//	HOME     the user's home (~/), e.g. DIR/domains/vm/fs/home/user
//	TMPDIR   the domain's /tmp (mktemp, os.TempDir, ...)
//	QUBES_CLAW_ROOT  the domain's root, to prefix absolute paths
//
// or through host paths built with Machine.Path. Every process the machine
// starts (qvm-run, qubes-sim vm and dom0, qrexec services, units) gets these,
// and so does a `qubes-sim env` shell for dom0. Isolation mode adds network
// namespaces only; it does not change this.
//
// # Runtime fidelity notes
//
//   - qrexec sockets: while a VM runs, dom0's /run/qubes/qrexec.VM is a unix
//     socket listened on by the VM's supervisor (created before qvm-start
//     returns, removed before the VM is Halted). dom0's /run/qubes is
//     recreated (2770) at every dom0 boot. A killed supervisor's socket
//     refuses connections at once and its file goes at the next state read,
//     start of the VM or machine shutdown.
//   - QubesDB: qubesdb-read, -multiread and -list answer for the VM the
//     calling process runs in (found from its ancestry, never its
//     environment), computed live from the qubes state (see qubesDB).
//   - dom0 runs qubesd.service (enabled at machine creation): a stand-in
//     process that is active while dom0 runs, so units ordered After= or
//     requiring it behave as in dom0.
//   - Every process the machine starts carries SpawnedEnv; shutdown and
//     reboot kill those that outlived a killed supervisor (see killStrays).
package sim
