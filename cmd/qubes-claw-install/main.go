// Command qubes-claw-install deploys qubes-claw from dom0: the agent VM,
// its tags, features and services, the client tags, our qrexec policy and
// qvm-remote's authorization, computed by installer/plan from one answers
// file or a terminal wizard, applied step by step and idempotently, and
// undone by `qubes-claw-install uninstall`.
package main

import (
	"os"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
)

func main() {
	os.Exit(cli.Run(newRootCmd(), os.Args[1:], cli.OSStdio()))
}
