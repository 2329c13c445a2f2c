// Command qubes-claw-connect is the qrexec service qubes-claw.Connect in the
// agent VM: qrexec runs it once per tunnel channel with the port as the
// call's argument, and it connects the channel to 127.0.0.1:PORT if the port
// is allow-listed.
package main

import (
	"os"
	"runtime"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
)

func main() {
	// One connection per process: with a single P its two copy goroutines
	// share one thread instead of competing for the CPUs with the relays
	// around them (bulk echo through the tunnel at 0.510 of direct against
	// 0.481, same-run A/B; GET latency the same either way). GOMAXPROCS in
	// the environment wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	os.Exit(cli.Run(newRootCmd(), os.Args[1:], cli.OSStdio()))
}
