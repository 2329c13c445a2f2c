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
	// One connection per process: with a single P the copy goroutines and
	// the poller share one thread instead of waking idle ones on the
	// request's path (median tunnel overhead 1.48/1.43 ms against 1.78/1.51
	// ms in A/B runs of BenchmarkTunnel). GOMAXPROCS in the environment wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	os.Exit(cli.Run(newRootCmd(), os.Args[1:], cli.OSStdio()))
}
