package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/qubes"
	"github.com/qubes-claw/qubes-claw/pkg/remote/keys"
	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
)

// keyShowCommand is what authorize runs in the VM to read its key. A fixed
// string: no VM-supplied data ever enters a command line.
const keyShowCommand = "qvm-remote key show"

// AuthorizeOptions are the inputs of authorize, revoke and keys.
type AuthorizeOptions struct {
	g   *globals
	VM  string
	Key string
	In  io.Reader
	Out io.Writer
	// Qubes runs qvm-run (tests replace its Runner).
	Qubes *qubes.Client
}

func newAuthorizeCmd(g *globals) *cobra.Command {
	opts := &AuthorizeOptions{g: g, Qubes: &qubes.Client{}}
	return &cobra.Command{
		Use:   "authorize VM [KEY|-]",
		Short: "Accept commands from VM: read its key from the VM, or take KEY",
		Long: `authorize stores VM's key in the key directory (mode 0600). Without KEY the key
is read from the running VM, where 'qvm-remote key gen' made it, over a channel dom0
opens (qvm-run --pass-io --no-autostart --no-gui VM 'qvm-remote key show'), so no
VM calls into dom0 and no key is typed. KEY "-" reads it from stdin. Compare the
printed fingerprint with 'qvm-remote key show --fingerprint' in the VM.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return cli.Usagef("authorize takes VM and optionally KEY")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.VM = args[0]
			if len(args) == 2 {
				opts.Key = args[1]
			}
			opts.In, opts.Out = cmd.InOrStdin(), cmd.OutOrStdout()
			return runAuthorize(cmd.Context(), opts)
		},
	}
}

func runAuthorize(ctx context.Context, opts *AuthorizeOptions) error {
	cfg, err := opts.g.load()
	if err != nil {
		return err
	}
	if !proto.ValidVMName(opts.VM) {
		return cli.Usagef("invalid VM name %q", opts.VM)
	}
	var text string
	switch opts.Key {
	case "":
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := opts.Qubes.Run(ctx, opts.VM, keyShowCommand, qubes.RunOptions{PassIO: true, NoAutostart: true, NoGUI: true})
		switch {
		case errors.Is(err, qubes.ErrNotRunning), errors.Is(err, qubes.ErrPaused):
			return cli.Exit(cli.ExitFailure, "%s is not running: start it, or pass the key (qvm-remote-dom0 authorize %s KEY)", opts.VM, opts.VM)
		case errors.Is(err, qubes.ErrNoSuchVM):
			return cli.Exit(cli.ExitFailure, "no such VM: %s", opts.VM)
		case err != nil:
			return cli.Exit(cli.ExitFailure, "read the key from %s (run `qvm-remote key gen` there first): %v", opts.VM, err)
		}
		text = string(out)
	case "-":
		b, err := io.ReadAll(io.LimitReader(opts.In, 1024))
		if err != nil {
			return err
		}
		text = string(b)
	default:
		text = opts.Key
	}
	k, err := keys.Parse(strings.TrimSpace(text))
	if err != nil {
		return cli.Exit(cli.ExitFailure, "key of %s: %v", opts.VM, err)
	}
	if err := (keys.Store{Dir: string(cfg.KeyDir)}).Authorize(opts.VM, k); err != nil {
		return cli.Exit(cli.ExitFailure, "store the key: %v", err)
	}
	fmt.Fprintf(opts.Out, "authorized %s: %s\n", opts.VM, k.Fingerprint())
	return nil
}

func newRevokeCmd(g *globals) *cobra.Command {
	opts := &AuthorizeOptions{g: g}
	return &cobra.Command{
		Use:   "revoke VM",
		Short: "Remove VM's key: its commands are refused from now on",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return cli.Usagef("revoke takes one VM")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.VM, opts.Out = args[0], cmd.OutOrStdout()
			cfg, err := opts.g.load()
			if err != nil {
				return err
			}
			if err := (keys.Store{Dir: string(cfg.KeyDir)}).Revoke(opts.VM); err != nil {
				return cli.Exit(cli.ExitFailure, "%v", err)
			}
			fmt.Fprintf(opts.Out, "revoked %s\n", opts.VM)
			return nil
		},
	}
}

func newKeysCmd(g *globals) *cobra.Command {
	opts := &AuthorizeOptions{g: g}
	return &cobra.Command{
		Use:   "keys",
		Short: "List authorized VMs with their key fingerprints (never the keys)",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("keys takes no arguments")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out = cmd.OutOrStdout()
			cfg, err := opts.g.load()
			if err != nil {
				return err
			}
			entries, err := (keys.Store{Dir: string(cfg.KeyDir)}).List()
			if err != nil {
				return cli.Exit(cli.ExitFailure, "%v", err)
			}
			for _, e := range entries {
				if e.Err != nil {
					fmt.Fprintf(opts.Out, "%-31s unusable: %v\n", e.VM, e.Err)
					continue
				}
				fmt.Fprintf(opts.Out, "%-31s %s\n", e.VM, e.Fingerprint)
			}
			return nil
		},
	}
}
