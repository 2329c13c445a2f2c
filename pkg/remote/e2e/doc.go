// Package e2e holds the end-to-end tests and benchmarks of qvm-remote on the
// Qubes simulator: the real binaries installed where a user has them
// (/usr/bin/qvm-remote in the template, /usr/bin/qvm-remote-dom0 and its
// unit in dom0), keys exchanged the pull-model way, the daemon started by
// systemctl, and every command typed inside a VM. It has no non-test code.
package e2e
