package main

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/logging"
	"github.com/qubes-claw/qubes-claw/pkg/remote/agent"
	"github.com/qubes-claw/qubes-claw/pkg/remote/queue"
)

// lockWait bounds how long a new channel waits for the agent of the one it
// replaces to exit (dom0 re-opened after the old one broke).
const lockWait = 10 * time.Second

// ServeOptions are serve's inputs.
type ServeOptions struct {
	g   *globals
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

func newServeCmd(g *globals) *cobra.Command {
	opts := &ServeOptions{g: g}
	return &cobra.Command{
		Use:   "serve",
		Short: "Serve dom0's channel on stdin/stdout (run by qvm-remote-dom0, not by hand)",
		Long: `serve is the VM end of the channel dom0 opens with
'qvm-run --pass-io --no-autostart --no-gui VM "qvm-remote serve"'. It hands each
command queued in ~/.qvm-remote to dom0 the moment it appears and writes the
output and results dom0 sends back into the queue. Logs go to stderr.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.In, opts.Out, opts.Err = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			return runServe(cmd.Context(), opts)
		},
	}
}

func runServe(ctx context.Context, opts *ServeOptions) error {
	cfg, err := opts.g.load()
	if err != nil {
		return err
	}
	logger, err := logging.New(cfg.Log, opts.Err)
	if err != nil {
		return cli.Exit(cli.ExitFailure, "%v", err)
	}
	defer logger.Close()
	a := &agent.Agent{Queue: queue.Dir(cfg.QueueDir), Log: logger.WithField("program", "qvm-remote serve"), LockWait: lockWait}
	if err := a.Serve(ctx, opts.In, opts.Out); err != nil {
		return cli.Exit(cli.ExitFailure, "serve: %v", err)
	}
	return nil
}
