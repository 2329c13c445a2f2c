package pkgspec

import (
	"path"

	"github.com/qubes-claw/qubes-claw/pkg/programs"
)

// Paths used by several packages.
const (
	unitDir     = "/usr/lib/systemd/system"
	userUnitDir = "/usr/lib/systemd/user"
	// rpcDir is the template-wide qrexec service directory (qubes.md §2.3);
	// qubes-core-qrexec owns the directory, we own only our file in it.
	rpcDir    = "/etc/qubes-rpc"
	policyDir = "/etc/qubes/policy.d"
	// saltDir is where qubesctl's file_roots find formulas (qubes.md §4.1).
	saltDir = "/srv/salt"
)

// systemDirs are directories that the base system or Qubes core packages
// own. Our packages put files in them but never own them: owning them would
// make our erase try to remove them, and `rpm -qf` blame us.
var systemDirs = map[string]bool{
	"/": true, "/etc": true, "/usr": true, "/usr/bin": true, "/usr/lib": true,
	"/usr/share": true, "/usr/share/doc": true, "/usr/share/licenses": true,
	"/usr/lib/systemd": true, unitDir: true, userUnitDir: true,
	"/usr/lib/systemd/system-preset": true, "/usr/lib/systemd/user-preset": true,
	"/etc/qubes": true, policyDir: true, rpcDir: true, "/etc/qubes/rpc-config": true,
	"/srv": true, saltDir: true, "/var": true, "/var/lib": true, "/var/log": true,
	"/var/log/qubes": true,
}

// SystemDir reports whether dir belongs to the base system or Qubes core.
func SystemDir(dir string) bool { return systemDirs[path.Clean(dir)] }

// configEntries ships configs/NAME.yaml at the system file path of binary
// NAME's config spec (pkg/programs), so the packaged path can never drift
// from the path the program reads. Programs without a spec ship no config.
func configEntries(binary string) []Entry {
	for _, p := range programs.All() {
		d := p.Describe()
		if d.Program != binary || d.SystemFile == "" {
			continue
		}
		dest := string(d.SystemFile)
		out := []Entry{{Kind: Config, Source: "configs/" + binary + ".yaml", Dest: dest, Mode: 0o644, With: binary}}
		// Own the config's directories up to the first system one, so an
		// erase leaves no directory of ours behind.
		for dir := path.Dir(dest); !SystemDir(dir); dir = path.Dir(dir) {
			out = append(out, Entry{Kind: Dir, Dest: dir, Mode: 0o755, With: binary})
		}
		return out
	}
	return nil
}

// RPM scriptlets run under /bin/sh, and nfpm (unlike rpmbuild) adds no
// requirement for it, so every RPM with scriptlets declares one.
var rpmShell = Dep{Name: "/bin/sh", Why: "the %post/%preun/%postun scriptlets run under /bin/sh", Only: RPM}

// All returns every package, dom0 ones first.
func All() []Package {
	return []Package{
		{
			Name:    "qvm-remote-dom0",
			Summary: "dom0 daemon of qvm-remote: runs authenticated commands from VMs",
			Description: "qvm-remote-dom0 pulls commands queued by qvm-remote in the VMs it is\n" +
				"configured for, checks their per-VM HMAC keys and runs them in dom0.\n" +
				"The systemd unit is installed but never enabled by the package:\n" +
				"run `qvm-remote-dom0 enable` and confirm the warning.",
			Side:    Dom0,
			Formats: []Format{RPM},
			Epoch:   "1",
			Entries: []Entry{
				{Kind: Binary, Source: "qvm-remote-dom0", Dest: "/usr/bin/qvm-remote-dom0", Mode: 0o755},
				{Kind: File, Source: "rpm/qvm-remote-dom0.service", Dest: unitDir + "/qvm-remote-dom0.service", Mode: 0o644, With: "qvm-remote-dom0"},
				// Per-VM keys: readable by root only.
				{Kind: Dir, Dest: "/etc/qubes/remote.d", Mode: 0o700, With: "qvm-remote-dom0"},
				// The 1.x package owned this config (%config(noreplace), 0600); owning
				// it as a ghost keeps the admin's copy when 1.x is upgraded to us
				// (rpm would otherwise erase it with 1.x), and the daemon still
				// reads its QVM_REMOTE_VMS (legacy_conf).
				{Kind: Ghost, Dest: "/etc/qubes/remote.conf", Mode: 0o600, With: "qvm-remote-dom0"},
			},
			Depends: []Dep{
				{Name: "qubes-core-admin-client", Why: "qvm-run and qvm-check open every channel to the VMs"},
				{Name: "bash", Why: "commands run as bash scripts"},
				{Name: "systemd", Why: "the service unit and the scriptlets' systemctl"},
				rpmShell,
			},
			Scripts: map[Format]Scripts{RPM: {
				PostInstall: "rpm/qvm-remote-dom0.post.sh",
				PreRemove:   "rpm/qvm-remote-dom0.preun.sh",
				PostRemove:  "rpm/qvm-remote-dom0.postun.sh",
			}},
		},
		{
			Name:    "qubes-claw-dom0",
			Summary: "dom0 side of the qubes-claw agent VM: tunnels, policy, installer, Salt formula",
			Description: "qubes-claw-tunnel forwards 127.0.0.1 ports in dom0 to the agent VM\n" +
				"over qrexec; the qrexec policy limits which VMs reach which ports;\n" +
				"qubes-claw-install plans and applies a deployment, also as a Salt formula;\n" +
				"qubes-claw-admin is the loopback admin panel. No unit is enabled by the package.",
			Side:    Dom0,
			Formats: []Format{RPM},
			Entries: []Entry{
				{Kind: Binary, Source: "qubes-claw-tunnel", Dest: "/usr/bin/qubes-claw-tunnel", Mode: 0o755},
				{Kind: File, Source: "rpm/qubes-claw-tunnel.service", Dest: unitDir + "/qubes-claw-tunnel.service", Mode: 0o644, With: "qubes-claw-tunnel"},
				// Group qubes may edit policies without root, as core's own files.
				{Kind: Config, Source: "rpm/50-qubes-claw.policy", Dest: policyDir + "/50-qubes-claw.policy", Mode: 0o664, Group: "qubes", With: "qubes-claw-tunnel"},
				{Kind: Binary, Source: "qubes-claw-install", Dest: "/usr/bin/qubes-claw-install", Mode: 0o755},
				{Kind: Dir, Dest: saltDir + "/qubes-claw", Mode: 0o755, With: "qubes-claw-install"},
				// The whole formula: qubesctl's file_roots (/srv/salt) must hold
				// what init.sls imports (map.jinja, defaults.yaml) and the VM
				// states the top file names.
				{Kind: File, Source: "salt/qubes-claw/init.sls", Dest: saltDir + "/qubes-claw/init.sls", Mode: 0o644, With: "qubes-claw-install"},
				{Kind: File, Source: "salt/qubes-claw/vm.sls", Dest: saltDir + "/qubes-claw/vm.sls", Mode: 0o644, With: "qubes-claw-install"},
				{Kind: File, Source: "salt/qubes-claw/template.sls", Dest: saltDir + "/qubes-claw/template.sls", Mode: 0o644, With: "qubes-claw-install"},
				{Kind: File, Source: "salt/qubes-claw/map.jinja", Dest: saltDir + "/qubes-claw/map.jinja", Mode: 0o644, With: "qubes-claw-install"},
				{Kind: File, Source: "salt/qubes-claw/defaults.yaml", Dest: saltDir + "/qubes-claw/defaults.yaml", Mode: 0o644, With: "qubes-claw-install"},
				{Kind: File, Source: "salt/qubes-claw.top", Dest: saltDir + "/qubes-claw.top", Mode: 0o644, With: "qubes-claw-install"},
				{Kind: Binary, Source: "qubes-claw-admin", Dest: "/usr/bin/qubes-claw-admin", Mode: 0o755},
				{Kind: File, Source: "rpm/qubes-claw-admin.service", Dest: unitDir + "/qubes-claw-admin.service", Mode: 0o644, With: "qubes-claw-admin"},
			},
			Depends: []Dep{
				{Name: "qubes-core-qrexec-dom0", Why: "qrexec-client carries every tunnel connection; owns /etc/qubes/policy.d"},
				{Name: "qubes-core-admin-client", Why: "qvm-* tools used by the installer and the admin panel"},
				{Name: "qubes-mgmt-salt-dom0", Why: "qubesctl applies the Salt formula; owns /srv/salt"},
				{Name: "systemd", Why: "the service units and the scriptlets' systemctl"},
				rpmShell,
			},
			Scripts: map[Format]Scripts{RPM: {
				PostInstall: "rpm/qubes-claw-dom0.post.sh",
				PreRemove:   "rpm/qubes-claw-dom0.preun.sh",
				PostRemove:  "rpm/qubes-claw-dom0.postun.sh",
			}},
		},
		{
			Name:    "qvm-remote",
			Summary: "Run commands in Qubes OS dom0 from a VM, like ssh",
			Description: "qvm-remote queues a command for dom0 and streams its output and exit\n" +
				"status back. dom0 pulls the queue (qvm-remote-dom0); no VM can call\n" +
				"into dom0.",
			Side:    VM,
			Formats: []Format{RPM, Arch},
			Epoch:   "1",
			Entries: []Entry{
				{Kind: Binary, Source: "qvm-remote", Dest: "/usr/bin/qvm-remote", Mode: 0o755},
			},
			Depends: []Dep{
				{Name: "qubes-core-agent", Why: "dom0 reaches `qvm-remote serve` through qvm-run, served by the qrexec agent", Only: RPM},
				{Name: "qubes-vm-core", Why: "dom0 reaches `qvm-remote serve` through qvm-run, served by the qrexec agent", Only: Arch},
			},
		},
		{
			Name:    "qubes-claw-vm",
			Summary: "Agent VM side of qubes-claw: qrexec service handler and LLM proxy",
			Description: "qubes-claw-connect is the qrexec service that connects tunnels to the\n" +
				"allow-listed loopback ports; qubes-claw-proxy is the OpenAI-compatible\n" +
				"LLM proxy that the OpenClaw gateway talks to.",
			Side:    VM,
			Formats: []Format{RPM, Arch},
			Entries: []Entry{
				{Kind: Binary, Source: "qubes-claw-connect", Dest: "/usr/bin/qubes-claw-connect", Mode: 0o755},
				// Our own service name, never core's qubes.ConnectTCP path.
				{Kind: Symlink, Source: "/usr/bin/qubes-claw-connect", Dest: rpcDir + "/qubes-claw.Connect", With: "qubes-claw-connect"},
				{Kind: Binary, Source: "qubes-claw-proxy", Dest: "/usr/bin/qubes-claw-proxy", Mode: 0o755},
				// User units, default rendering of pkg/vmsetup (setup writes its own
				// copy to ~/.config/systemd/user); never enabled by the package:
				// setup enables them, gated on the Qubes service flags.
				{Kind: File, Source: "configs/systemd/qubes-claw-proxy.service", Dest: userUnitDir + "/qubes-claw-proxy.service", Mode: 0o644, With: "qubes-claw-proxy"},
				{Kind: File, Source: "configs/systemd/qubes-claw-gateway.service", Dest: userUnitDir + "/qubes-claw-gateway.service", Mode: 0o644, With: "qubes-claw-proxy"},
				{Kind: Dir, Dest: "/usr/share/doc/qubes-claw-vm", Mode: 0o755, With: "qubes-claw-proxy"},
				{Kind: Dir, Dest: "/usr/share/doc/qubes-claw-vm/examples", Mode: 0o755, With: "qubes-claw-proxy"},
				{Kind: File, Source: "configs/examples/qubes-claw-proxy-openai.yaml", Dest: "/usr/share/doc/qubes-claw-vm/examples/qubes-claw-proxy-openai.yaml", Mode: 0o644, With: "qubes-claw-proxy"},
				{Kind: File, Source: "configs/examples/qubes-claw-proxy-anthropic.yaml", Dest: "/usr/share/doc/qubes-claw-vm/examples/qubes-claw-proxy-anthropic.yaml", Mode: 0o644, With: "qubes-claw-proxy"},
				{Kind: File, Source: "configs/examples/qubes-claw-proxy-ollama.yaml", Dest: "/usr/share/doc/qubes-claw-vm/examples/qubes-claw-proxy-ollama.yaml", Mode: 0o644, With: "qubes-claw-proxy"},
				{Kind: File, Source: "configs/examples/qubes-claw-proxy-cursor.yaml", Dest: "/usr/share/doc/qubes-claw-vm/examples/qubes-claw-proxy-cursor.yaml", Mode: 0o644, With: "qubes-claw-proxy"},
			},
			Depends: []Dep{
				{Name: "qubes-core-qrexec-vm", Why: "the qrexec agent runs our service; owns /etc/qubes-rpc", Only: RPM},
				{Name: "qubes-vm-qrexec", Why: "the qrexec agent runs our service", Only: Arch},
			},
		},
	}
}
