package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/remote/queue"
)

// pingPickup bounds ping's wait for dom0 to take the probe: ping answers
// "is dom0 serving me now", not "eventually".
const pingPickup = 5 * time.Second

// PingOptions are ping's inputs.
type PingOptions struct {
	g        *globals
	Out, Err io.Writer
}

func newPingCmd(g *globals) *cobra.Command {
	opts := &PingOptions{g: g}
	return &cobra.Command{
		Use:   "ping",
		Short: "Run `true` in dom0 and report the round trip",
		Long: `ping sends the command 'true' through the whole path (key, token, dom0's
checks, execution) and prints the round-trip time. It exits 0 when dom0 ran it,
255 with the reason otherwise.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out, opts.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return runPing(cmd.Context(), opts)
		},
	}
}

func runPing(ctx context.Context, opts *PingOptions) error {
	cfg, err := opts.g.load()
	if err != nil {
		return err
	}
	cfg.PickupTimeout = min(cfg.PickupTimeout, pingPickup)
	start := time.Now()
	res, err := submit(ctx, cfg, queue.Dir(cfg.QueueDir), []byte("true"), 10*time.Second, io.Discard, io.Discard, func(string) {})
	if err != nil {
		return err
	}
	if res.Reason != "" {
		return cli.Exit(exitRemote, "%s", res.Reason)
	}
	if res.Code != 0 {
		return cli.Exit(exitRemote, "dom0 answered, but `true` exited %d", res.Code)
	}
	fmt.Fprintf(opts.Out, "pong from dom0 in %s\n", time.Since(start).Round(100*time.Microsecond))
	return nil
}
