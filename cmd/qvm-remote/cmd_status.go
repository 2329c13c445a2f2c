package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/qubes-claw/qubes-claw/pkg/remote/agent"
	"github.com/qubes-claw/qubes-claw/pkg/remote/client"
	"github.com/qubes-claw/qubes-claw/pkg/remote/queue"
)

// StatusOptions are status's inputs.
type StatusOptions struct {
	g   *globals
	Out io.Writer
}

func newStatusCmd(g *globals) *cobra.Command {
	opts := &StatusOptions{g: g}
	return &cobra.Command{
		Use:   "status",
		Short: "Show this VM's name, key fingerprint, dom0 channel and queue",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out = cmd.OutOrStdout()
			return runStatus(cmd.Context(), opts)
		},
	}
}

func runStatus(ctx context.Context, opts *StatusOptions) error {
	cfg, err := opts.g.load()
	if err != nil {
		return err
	}
	q := queue.Dir(cfg.QueueDir)
	w := opts.Out
	if vm, source, err := client.VMName(ctx, cfg.VMName, q); err == nil {
		fmt.Fprintf(w, "vm:      %s (%s)\n", vm, source)
	} else {
		fmt.Fprintf(w, "vm:      unknown (%v)\n", err)
	}
	if k, err := client.ReadKey(q); err == nil {
		fmt.Fprintf(w, "key:     %s (%s)\n", k.Fingerprint(), q.KeyFile())
	} else {
		fmt.Fprintf(w, "key:     none (%v)\n", err)
	}
	if agent.Serving(q) {
		fmt.Fprintln(w, "channel: open (dom0 is serving this VM)")
	} else {
		fmt.Fprintln(w, "channel: none (qvm-remote-dom0 is not running, or has not reached this VM yet)")
	}
	c := countQueue(q)
	fmt.Fprintf(w, "queue:   %d pending, %d running, %d results not yet collected\n", c.pending, c.running, c.results)
	return nil
}
