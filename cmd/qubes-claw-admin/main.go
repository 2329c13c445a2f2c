// Command qubes-claw-admin is dom0's local admin panel on 127.0.0.1:9876: the
// state of qvm-remote, the agent VM, the tunnels, the proxy and the gateway,
// qvm-remote's audit log live, and the few safe actions (start or stop the
// daemon for this boot, restart the tunnels, revoke a VM).
package main

import (
	"os"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
)

func main() {
	os.Exit(cli.Run(newRootCmd(), os.Args[1:], cli.OSStdio()))
}
