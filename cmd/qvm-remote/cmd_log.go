package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/remote/queue"
)

// LogOptions are the inputs of log and history.
type LogOptions struct {
	g   *globals
	N   int
	Out io.Writer
}

func parseCount(args []string) (int, error) {
	if len(args) == 0 {
		return 20, nil
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return 0, cli.Usagef("N must be a positive number, got %q", args[0])
	}
	return n, nil
}

func newLogCmd(g *globals) *cobra.Command {
	opts := &LogOptions{g: g}
	return &cobra.Command{
		Use:   "log [N]",
		Short: "Show the last N lines of this VM's audit.log (default 20)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseCount(args)
			if err != nil {
				return err
			}
			opts.N, opts.Out = n, cmd.OutOrStdout()
			return runLog(opts)
		},
	}
}

func runLog(opts *LogOptions) error {
	cfg, err := opts.g.load()
	if err != nil {
		return err
	}
	b, err := os.ReadFile(queue.Dir(cfg.QueueDir).AuditLog())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return cli.Exit(cli.ExitFailure, "%v", err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	for _, l := range lines[max(0, len(lines)-opts.N):] {
		opts.Out.Write(l)
	}
	return nil
}

func newHistoryCmd(g *globals) *cobra.Command {
	opts := &LogOptions{g: g}
	return &cobra.Command{
		Use:   "history [N]",
		Short: "List the last N commands with their exit status (default 20)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseCount(args)
			if err != nil {
				return err
			}
			opts.N, opts.Out = n, cmd.OutOrStdout()
			return runHistory(opts)
		},
	}
}

func runHistory(opts *LogOptions) error {
	cfg, err := opts.g.load()
	if err != nil {
		return err
	}
	entries, err := queue.Dir(cfg.QueueDir).HistoryEntries()
	if err != nil {
		return cli.Exit(cli.ExitFailure, "%v", err)
	}
	for _, e := range entries[max(0, len(entries)-opts.N):] {
		status := e.Meta.Status
		if status == "" {
			status = "?"
		}
		cmd, _ := os.ReadFile(e.Dir + "/command")
		first, _, _ := strings.Cut(string(cmd), "\n")
		if len(first) > 60 {
			first = first[:60] + "..."
		}
		fmt.Fprintf(opts.Out, "%s %-8s %3d  %s  %s\n", e.Day, status, e.Code, e.ID, strconv.Quote(first))
	}
	return nil
}
