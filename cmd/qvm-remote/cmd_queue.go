package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/remote/agent"
	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
	"github.com/qubes-claw/qubes-claw/pkg/remote/queue"
)

// QueueOptions are the inputs of the queue subcommands.
type QueueOptions struct {
	g *globals
	// All makes clean also withdraw commands dom0 has not taken.
	All bool
	Out io.Writer
}

func newQueueCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "queue status|clean|debug",
		Short: "Inspect or clean the on-disk queue (~/.qvm-remote/queue)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	st := &QueueOptions{g: g}
	cl := &QueueOptions{g: g}
	dbg := &QueueOptions{g: g}
	cleanCmd := &cobra.Command{
		Use:   "clean",
		Short: "Remove temporary files and results no client is waiting for",
		Long: `clean removes what a killed client left behind: temporary files and results
whose command is neither pending nor running. Pending and running entries stay
(dom0 answers them), unless --all, which withdraws pending ones too.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { cl.Out = cmd.OutOrStdout(); return runQueueClean(cl) },
	}
	cleanCmd.Flags().BoolVar(&cl.All, "all", false, "also withdraw commands dom0 has not taken yet")
	cmd.AddCommand(
		&cobra.Command{
			Use: "status", Short: "Count and list the entries", Args: noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { st.Out = cmd.OutOrStdout(); return runQueueStatus(st) },
		},
		cleanCmd,
		&cobra.Command{
			Use: "debug", Short: "List every file of the queue with its mode, size and age", Args: noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { dbg.Out = cmd.OutOrStdout(); return runQueueDebug(dbg) },
		},
	)
	return cmd
}

type queueCount struct {
	pending, running, results int
	pendingIDs, runningIDs    []proto.ID
	resultIDs                 map[proto.ID]bool
}

func countQueue(q queue.Dir) queueCount {
	var c queueCount
	c.pendingIDs, _, _ = q.PendingIDs()
	c.runningIDs, _ = q.RunningIDs()
	c.resultIDs = map[proto.ID]bool{}
	des, _ := os.ReadDir(q.Results())
	for _, de := range des {
		base, _, _ := strings.Cut(de.Name(), ".")
		if id, err := proto.ParseID(base); err == nil {
			c.resultIDs[id] = true
		}
	}
	c.pending, c.running, c.results = len(c.pendingIDs), len(c.runningIDs), len(c.resultIDs)
	return c
}

func runQueueStatus(opts *QueueOptions) error {
	cfg, err := opts.g.load()
	if err != nil {
		return err
	}
	q := queue.Dir(cfg.QueueDir)
	c := countQueue(q)
	fmt.Fprintf(opts.Out, "pending: %d\n", c.pending)
	for _, id := range c.pendingIDs {
		fmt.Fprintf(opts.Out, "  %s\n", id)
	}
	fmt.Fprintf(opts.Out, "running: %d\n", c.running)
	for _, id := range c.runningIDs {
		fmt.Fprintf(opts.Out, "  %s\n", id)
	}
	fmt.Fprintf(opts.Out, "results: %d\n", c.results)
	for id := range c.resultIDs {
		fmt.Fprintf(opts.Out, "  %s\n", id)
	}
	serving := "no"
	if agent.Serving(q) {
		serving = "yes"
	}
	fmt.Fprintf(opts.Out, "dom0 channel open: %s\n", serving)
	return nil
}

func runQueueClean(opts *QueueOptions) error {
	cfg, err := opts.g.load()
	if err != nil {
		return err
	}
	q := queue.Dir(cfg.QueueDir)
	removed := 0
	if opts.All {
		ids, bad, _ := q.PendingIDs()
		for _, id := range ids {
			if q.Withdraw(id) {
				removed++
			}
		}
		for _, name := range bad {
			if os.Remove(filepath.Join(q.Pending(), name)) == nil {
				removed++
			}
		}
	}
	c := countQueue(q)
	live := map[proto.ID]bool{}
	for _, id := range append(c.pendingIDs, c.runningIDs...) {
		live[id] = true
	}
	des, _ := os.ReadDir(q.Results())
	for _, de := range des {
		base, _, _ := strings.Cut(de.Name(), ".")
		if id, err := proto.ParseID(base); err == nil && live[id] {
			continue // a client may still be tailing it
		}
		if os.Remove(filepath.Join(q.Results(), de.Name())) == nil {
			removed++
		}
	}
	tmp, _ := os.ReadDir(q.Tmp())
	for _, de := range tmp {
		if os.Remove(filepath.Join(q.Tmp(), de.Name())) == nil {
			removed++
		}
	}
	fmt.Fprintf(opts.Out, "removed %d files\n", removed)
	return nil
}

func runQueueDebug(opts *QueueOptions) error {
	cfg, err := opts.g.load()
	if err != nil {
		return err
	}
	root := string(cfg.QueueDir)
	now := time.Now()
	err = filepath.WalkDir(filepath.Join(root, "queue"), func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return nil // gone meanwhile
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(opts.Out, "%s %8d %8s %s\n", fi.Mode(), fi.Size(), now.Sub(fi.ModTime()).Round(time.Second), rel)
		return nil
	})
	if err != nil {
		return cli.Exit(cli.ExitFailure, "%v", err)
	}
	return nil
}
