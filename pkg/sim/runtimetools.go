package sim

import "strings"

// runtimeTools run things: qvm-run, qvm-start, qrexec-client, ...
var runtimeTools = map[string]tool{
	"qvm-run":          qvmRun,
	"qvm-start":        qvmStart,
	"qvm-shutdown":     qvmShutdown,
	"qvm-pause":        qvmPause,
	"qvm-unpause":      qvmPause,
	"qrexec-client":    qrexecClient,
	"qrexec-client-vm": qrexecClientVM,
	// Linked under the names qubes-core-qubesdb installs.
	"qubesdb-read":      qubesdbCmd,
	"qubesdb-multiread": qubesdbCmd,
	"qubesdb-list":      qubesdbCmd,
}

// vmOnlyTools exist only inside VMs (qubes-core-agent); every other qvm-*,
// qubes-* and qrexec-client is dom0's; the rest (systemctl, loginctl, ...)
// exist everywhere.
var vmOnlyTools = map[string]bool{
	"qrexec-client-vm":     true,
	"qvm-connect-tcp":      true,
	"qvm-features-request": true,
	"qubesdb-read":         true,
	"qubesdb-multiread":    true,
	"qubesdb-list":         true,
	"qubesdb-write":        true,
}

func dom0Only(name string) bool {
	return !vmOnlyTools[name] && (strings.HasPrefix(name, "qvm-") || strings.HasPrefix(name, "qubes-") || name == "qrexec-client")
}

// toolInDom0 and toolInVM say where init links a tool.
func toolInDom0(name string) bool { return !vmOnlyTools[name] }
func toolInVM(name string) bool   { return !dom0Only(name) }
