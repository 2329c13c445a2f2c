// Package plan is the deployment plan of qubes-claw, shared by the installer
// wizard (cmd/qubes-claw-install) and checked against the Salt formula in
// salt/: from one answers file (Config) it computes the desired state as a
// list of Items — the agent VM and its prefs, tags, features and services,
// the client tags, our qrexec policy file, the qvm-remote admin VM, its key
// (pull model) and whether qvm-remote-dom0 runs at boot.
//
// Each Item reads the current state, tells the difference as lines a person
// reads, and applies it. Apply notes what it replaced in a Record, saved
// after every step, so uninstall undoes exactly what the installer did and
// nothing else. Everything goes through pkg/qubes (qvm-* tools, systemctl)
// or atomic file writes under config paths.
package plan
