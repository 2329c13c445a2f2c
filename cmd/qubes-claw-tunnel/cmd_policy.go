package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/policy"
	"github.com/qubes-claw/qubes-claw/pkg/qubes"
	"github.com/qubes-claw/qubes-claw/pkg/tunnel"
)

// Exit statuses of explain beyond the shared ones.
const (
	exitDenied = 3
	exitAsk    = 4
)

func newPolicyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Render the qubes-claw qrexec policy, or explain a policy decision",
	}
	cmd.AddCommand(newRenderCmd(g, nil), newExplainCmd(g, nil))
	return cmd
}

// RenderOptions are policy render's inputs.
type RenderOptions struct {
	g     *globals
	Write bool
	Out   io.Writer
}

func newRenderCmd(g *globals, runF func(context.Context, *RenderOptions) error) *cobra.Command {
	opts := &RenderOptions{g: g}
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Print (or write) the policy file that lets tagged client VMs reach the allowed ports",
		Long: `render prints the qrexec policy of qubes-claw from the policy section of the
configuration: client VMs tagged policy.client_tag may call qubes-claw.Connect
with +PORT, for policy.ports only, on the VM tagged policy.server_tag; every
other call of the service is denied. With --write it replaces policy.file
(mode 0664, as Qubes' own policy files); qrexec reads it at once.` + exitStatusHelp,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out = cmd.OutOrStdout()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runRender(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Write, "write", false, "write policy.file instead of printing")
	return cmd
}

func runRender(_ context.Context, opts *RenderOptions) error {
	cfg, _, err := opts.g.load()
	if err != nil {
		return err
	}
	b, err := cfg.Policy.Render()
	if err != nil {
		return &cli.Error{Code: exitConfig, Err: err}
	}
	if !opts.Write {
		_, err := opts.Out.Write(b)
		return err
	}
	path := string(cfg.Policy.File)
	if err := writeAtomic(path, b, 0o664); err != nil {
		return err
	}
	fmt.Fprintf(opts.Out, "wrote %s\n", path)
	return nil
}

// writeAtomic replaces path with data: qrexec re-reads policy on change and
// must never see a half-written file.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".qubes-claw-policy-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ExplainOptions are policy explain's inputs.
type ExplainOptions struct {
	g                    *globals
	Source, Call, Target string
	Out                  io.Writer
	System               func(context.Context) (policy.System, error)
}

func newExplainCmd(g *globals, runF func(context.Context, *ExplainOptions) error) *cobra.Command {
	opts := &ExplainOptions{g: g}
	return &cobra.Command{
		Use:   "explain SOURCE SERVICE[+ARG] TARGET",
		Short: "Tell which policy file and line decide a qrexec call, and the decision",
		Long: `explain evaluates a call as qrexec would, over every file of policy.dirs
(runtime directory first), with the qubes' current tags, classes and power
states, and prints each rule of the service that was looked at, why it did not
match, and the rule that decided. For example, why a client VM's tunnel is
refused:

  qubes-claw-tunnel policy explain work qubes-claw.Connect+32125 openclaw

TARGET is a qube name, @default, @dispvm or @dispvm:NAME.` + exitStatusHelp,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 3 {
				return cli.Usagef("explain takes SOURCE SERVICE[+ARG] TARGET, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Source, opts.Call, opts.Target = args[0], args[1], args[2]
			opts.Out = cmd.OutOrStdout()
			if opts.System == nil {
				c := &qubes.Client{}
				opts.System = func(ctx context.Context) (policy.System, error) { return tunnel.System(ctx, c) }
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runExplain(cmd.Context(), opts)
		},
	}
}

func runExplain(ctx context.Context, opts *ExplainOptions) error {
	cfg, _, err := opts.g.load()
	if err != nil {
		return err
	}
	service, arg, err := tunnel.ParseCall(opts.Call)
	if err != nil {
		return cli.Usagef("%s: %v", opts.Call, err)
	}
	sys, err := opts.System(ctx)
	if err != nil {
		return err
	}
	var dirs []string
	for _, d := range cfg.Policy.Dirs {
		if fi, err := os.Stat(string(d)); err == nil && fi.IsDir() {
			dirs = append(dirs, string(d))
		}
	}
	if len(dirs) == 0 {
		return cli.Exit(cli.ExitFailure, "no policy directory found (policy.dirs: %v)", cfg.Policy.Dirs)
	}
	ex, err := tunnel.Explain(dirs, policy.Request{Service: service, Argument: arg, Source: opts.Source, Target: opts.Target}, sys)
	if err != nil {
		return err
	}
	fmt.Fprint(opts.Out, ex.String())
	switch {
	case ex.Err != nil:
		return cli.Status(cli.ExitFailure)
	case ex.Result.Action == policy.Deny:
		return cli.Status(exitDenied)
	case ex.Result.Action == policy.Ask:
		return cli.Status(exitAsk)
	}
	return nil
}
