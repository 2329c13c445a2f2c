// Command qvm-remote-dom0 is the dom0 daemon of qvm-remote: it opens one
// channel into each served VM (the pull model: no VM can call dom0), checks
// every command the VM queued against that VM's key, and runs it, streaming
// output and exactly one result back.
package main

import (
	"os"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
)

func main() {
	os.Exit(cli.Run(newRootCmd(), os.Args[1:], cli.OSStdio()))
}
