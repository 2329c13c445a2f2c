package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/tunnel"
)

// StatusOptions are the status command's inputs.
type StatusOptions struct {
	g    *globals
	JSON bool
	Out  io.Writer
	Now  func() time.Time
}

func newStatusCmd(g *globals, runF func(context.Context, *StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{g: g, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each tunnel: listening, VM reachable, connections, totals, last error",
		Long: `status asks the running daemon (over the control socket in runtime_dir) for
each tunnel's state: whether it listens, whether its VM is reachable (the
daemon's view: unreachable after a channel failed for want of the VM, until a
retry succeeds), active connections, idle pooled channels, totals and the last
error.` + exitStatusHelp,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out = cmd.OutOrStdout()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runStatus(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the status as JSON")
	return cmd
}

func runStatus(ctx context.Context, opts *StatusOptions) error {
	cfg, _, err := opts.g.load()
	if err != nil {
		return err
	}
	st, err := tunnel.Query(ctx, string(cfg.RuntimeDir))
	if errors.Is(err, tunnel.ErrNotRunning) {
		return cli.Exit(cli.ExitFailure, "not running (no answer in %s; is qubes-claw-tunnel.service started?)", cfg.RuntimeDir)
	}
	if err != nil {
		return err
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(opts.Out, st, opts.Now())
	return nil
}

func printStatus(w io.Writer, st tunnel.Status, now time.Time) {
	fmt.Fprintf(w, "qubes-claw-tunnel pid %d, transport %s, up %s\n\n", st.Pid, st.Transport, now.Sub(st.Started).Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TUNNEL\tLISTEN\tVM:PORT\tLISTENING\tVM\tACTIVE\tPOOL\tTOTAL\tREFUSED\tFAILED\tIN\tOUT")
	for _, t := range st.Tunnels {
		vm := "reachable"
		if !t.VMReachable {
			vm = "unreachable"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s:%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", t.Name, t.Listen, t.VM, t.Port,
			yesNo(t.Listening), vm, t.Active, t.PoolIdle, t.Total, t.Refused, t.Failed, bytes(t.BytesIn), bytes(t.BytesOut))
	}
	tw.Flush()
	for _, t := range st.Tunnels {
		if !t.VMReachable {
			fmt.Fprintf(w, "\n%s: vm %s unreachable since %s: %s", t.Name, t.VM, t.DownSince.Format(time.DateTime), t.DownReason)
		}
		if t.LastError != "" {
			fmt.Fprintf(w, "\n%s: last error %s ago: %s", t.Name, now.Sub(t.LastErrorAt).Round(time.Second), t.LastError)
		}
	}
	fmt.Fprintln(w)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
