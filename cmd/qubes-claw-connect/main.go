// Command qubes-claw-connect is the qrexec service qubes-claw.Connect in the
// agent VM: qrexec runs it once per tunnel channel with the port as the
// call's argument, and it connects the channel to 127.0.0.1:PORT if the port
// is allow-listed.
package main

import (
	"os"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
)

func main() {
	os.Exit(cli.Run(newRootCmd(), os.Args[1:], cli.OSStdio()))
}
