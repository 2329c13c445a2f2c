// Command qubes-sim is the simulated Qubes OS machine used by qubes-claw's tests
// and demo. Linked under the name of a Qubes tool (qvm-run, qrexec-client, ...)
// it behaves as that tool; run as qubes-sim it manages machines.
package main

import (
	"os"

	"github.com/qubes-claw/qubes-claw/pkg/sim"
)

func main() {
	os.Exit(sim.Main(os.Args, sim.OSStdio()))
}
