package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
)

// riskText is printed before enable asks; it is the whole point of the
// confirmation, so it names the consequence plainly.
const riskText = `qvm-remote-dom0 runs, as root in dom0, any command that an authorized VM sends.
Whoever controls an authorized VM controls dom0, and with it every qube and
all your data: Qubes' isolation no longer protects you from that VM.

Enabling makes the daemon start now and at every boot.
Authorized VMs (qvm-remote-dom0 keys) are the ones this applies to.
`

// EnableOptions are the inputs of enable and disable.
type EnableOptions struct {
	g   *globals
	In  io.Reader
	Out io.Writer
	// IsTerminal reports whether In is a terminal a person answers on.
	IsTerminal func(io.Reader) bool
	// Systemctl runs systemctl with args (tests record the calls).
	Systemctl func(ctx context.Context, args ...string) error
}

func newEnableCmd(g *globals) *cobra.Command {
	opts := &EnableOptions{g: g, IsTerminal: readerIsTerminal, Systemctl: systemctl}
	return &cobra.Command{
		Use:   "enable",
		Short: "Enable and start the service, after the risk is confirmed with \"yes\"",
		Long: `enable prints what running the daemon means for dom0's security and asks for
confirmation on the terminal. Only the exact answer "yes" enables and starts
` + unitName + `; any other answer, or no terminal on stdin (a script, a pipe),
changes nothing and exits 1.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.In, opts.Out = cmd.InOrStdin(), cmd.OutOrStdout()
			return runEnable(cmd.Context(), opts)
		},
	}
}

func newDisableCmd(g *globals) *cobra.Command {
	opts := &EnableOptions{g: g, Systemctl: systemctl}
	return &cobra.Command{
		Use:   "disable",
		Short: "Stop the service and disable it",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.Systemctl(cmd.Context(), "disable", "--now", unitName); err != nil {
				return cli.Exit(cli.ExitFailure, "%v", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s stopped and disabled\n", unitName)
			return nil
		},
	}
}

func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return cli.Usagef("unexpected arguments %q", args)
	}
	return nil
}

func runEnable(ctx context.Context, opts *EnableOptions) error {
	fmt.Fprint(opts.Out, riskText)
	if !opts.IsTerminal(opts.In) {
		return cli.Exit(cli.ExitFailure, "enable must be confirmed on a terminal (stdin is not one); nothing changed")
	}
	fmt.Fprint(opts.Out, "\nType yes to enable: ")
	line, err := bufio.NewReader(opts.In).ReadString('\n')
	if err != nil && line == "" {
		return cli.Exit(cli.ExitFailure, "no answer; nothing changed")
	}
	if strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r") != "yes" {
		return cli.Exit(cli.ExitFailure, "not confirmed (the answer must be exactly \"yes\"); nothing changed")
	}
	if err := opts.Systemctl(ctx, "enable", "--now", unitName); err != nil {
		return cli.Exit(cli.ExitFailure, "%v", err)
	}
	fmt.Fprintf(opts.Out, "%s enabled and started\n", unitName)
	return nil
}

func readerIsTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func systemctl(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "systemctl", args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
