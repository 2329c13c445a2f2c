package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/remote/client"
	"github.com/qubes-claw/qubes-claw/pkg/remote/keys"
	"github.com/qubes-claw/qubes-claw/pkg/remote/queue"
)

// KeyOptions are the inputs of the key subcommands.
type KeyOptions struct {
	g           *globals
	Force       bool
	Fingerprint bool
	Arg         string
	In          io.Reader
	Out         io.Writer
}

func newKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key gen|show|import",
		Short: "Manage this VM's key (~/.qvm-remote/auth.key)",
		Long: `The key authenticates every command this VM sends. It is generated here and
read by dom0 over a channel dom0 opens (qvm-remote-dom0 authorize VM), so it never
has to be typed or copied by hand.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	gen := &KeyOptions{g: g}
	genCmd := &cobra.Command{
		Use:   "gen",
		Short: "Generate this VM's key (refuses to replace one without --force)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			gen.Out = cmd.OutOrStdout()
			return runKeyGen(cmd.Context(), gen)
		},
	}
	genCmd.Flags().BoolVar(&gen.Force, "force", false, "replace an existing key (dom0 must authorize the new one)")
	show := &KeyOptions{g: g}
	showCmd := &cobra.Command{
		Use:   "show",
		Short: "Print the key (as dom0's authorize reads it), or its fingerprint",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			show.Out = cmd.OutOrStdout()
			return runKeyShow(show)
		},
	}
	showCmd.Flags().BoolVar(&show.Fingerprint, "fingerprint", false, "print only the fingerprint, to compare with `qvm-remote-dom0 keys`")
	imp := &KeyOptions{g: g}
	impCmd := &cobra.Command{
		Use:   "import [KEY|-]",
		Short: "Store a key made elsewhere (64 hex digits; - or nothing reads stdin)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				imp.Arg = args[0]
			}
			imp.In, imp.Out = cmd.InOrStdin(), cmd.OutOrStdout()
			return runKeyImport(imp)
		},
	}
	impCmd.Flags().BoolVar(&imp.Force, "force", false, "replace an existing key")
	cmd.AddCommand(genCmd, showCmd, impCmd)
	return cmd
}

func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return cli.Usagef("unexpected arguments %q", args)
	}
	return nil
}

func runKeyGen(ctx context.Context, opts *KeyOptions) error {
	cfg, err := opts.g.load()
	if err != nil {
		return err
	}
	q := queue.Dir(cfg.QueueDir)
	k := keys.Generate()
	if err := writeKey(q, k, opts.Force); err != nil {
		return err
	}
	vm, _, err := client.VMName(ctx, cfg.VMName, q)
	if err != nil {
		vm = "THIS-VM"
	}
	fmt.Fprintf(opts.Out, "generated %s in %s\nnow authorize it in dom0 (dom0 reads the key from this VM):\n  qvm-remote-dom0 authorize %s\n", k.Fingerprint(), q.KeyFile(), vm)
	return nil
}

func runKeyShow(opts *KeyOptions) error {
	cfg, err := opts.g.load()
	if err != nil {
		return err
	}
	k, err := client.ReadKey(queue.Dir(cfg.QueueDir))
	if err != nil {
		return cli.Exit(cli.ExitFailure, "%v", err)
	}
	if opts.Fingerprint {
		fmt.Fprintln(opts.Out, k.Fingerprint())
		return nil
	}
	fmt.Fprintln(opts.Out, k.Hex())
	return nil
}

func runKeyImport(opts *KeyOptions) error {
	cfg, err := opts.g.load()
	if err != nil {
		return err
	}
	s := opts.Arg
	if s == "" || s == "-" {
		b, err := io.ReadAll(io.LimitReader(opts.In, 1024))
		if err != nil {
			return err
		}
		s = string(b)
	}
	k, err := keys.Parse(strings.TrimSpace(s))
	if err != nil {
		return cli.Exit(cli.ExitFailure, "%v", err)
	}
	q := queue.Dir(cfg.QueueDir)
	if err := writeKey(q, k, opts.Force); err != nil {
		return err
	}
	fmt.Fprintf(opts.Out, "imported %s into %s\n", k.Fingerprint(), q.KeyFile())
	return nil
}

// writeKey stores k 0600, atomically; an existing key stays unless force.
func writeKey(q queue.Dir, k keys.Key, force bool) error {
	if err := q.Init(); err != nil {
		return err
	}
	if _, err := os.Lstat(q.KeyFile()); err == nil && !force {
		if old, err := client.ReadKey(q); err == nil {
			return cli.Exit(cli.ExitFailure, "%s already holds key %s; --force replaces it (then authorize the new key in dom0)", q.KeyFile(), old.Fingerprint())
		}
		return cli.Exit(cli.ExitFailure, "%s exists but is not a usable key; --force replaces it", q.KeyFile())
	}
	tmp, err := os.CreateTemp(filepath.Dir(q.KeyFile()), ".auth.key.*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(k.Hex() + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), q.KeyFile())
}
