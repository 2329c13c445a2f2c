// Command qvm-remote runs a command in dom0 from a VM, like ssh: it queues
// the command with an HMAC token, dom0's qvm-remote-dom0 pulls it over the
// channel it opened into this VM (`qvm-remote serve`), and the command's
// output and exit status come back as they are produced.
package main

import (
	"os"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
)

func main() {
	os.Exit(cli.Run(newRootCmd(), os.Args[1:], cli.OSStdio()))
}
