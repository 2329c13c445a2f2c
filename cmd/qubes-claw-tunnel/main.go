// Command qubes-claw-tunnel forwards local TCP ports to ports inside a VM
// over qrexec: in dom0 with qrexec-client -d (127.0.0.1:32125 → the agent
// VM's LLM proxy), in a client VM with qrexec-client-vm under policy. It also
// renders the qrexec policy of qubes-claw and explains policy decisions.
package main

import (
	"os"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
)

func main() {
	os.Exit(cli.Run(newRootCmd(), os.Args[1:], cli.OSStdio()))
}
