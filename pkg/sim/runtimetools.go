package sim

import "context"

// runtimeTools run things: qvm-run, qvm-start, qrexec-client, systemctl, ...
var runtimeTools = map[string]tool{}

// runSim runs a qubes-sim management subcommand.
func runSim(ctx context.Context, args []string, stdio Stdio) int {
	usage(stdio.Err)
	return 2
}
