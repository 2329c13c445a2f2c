package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/qubes-claw/qubes-claw/installer/plan"
	"github.com/qubes-claw/qubes-claw/installer/wizard"
	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/qubes"
)

const exitStatusHelp = `
EXIT STATUS
  0    success (also: nothing to change)
  1    a step failed (the report names it, its command, stderr and what to do)
  2    bad invocation or invalid answers
  130  interrupted`

// persistentEnv is the environment variable of remote.persistent_enable;
// it is refused so that the acceptance can only come from a typed "yes" or
// the answers file itself.
const persistentEnv = plan.EnvPrefix + "_REMOTE_PERSISTENT_ENABLE"

// globals is what every subcommand shares.
type globals struct {
	flags *pflag.FlagSet
	spec  config.Spec[plan.Config]
	Q     *qubes.Client
	// IsTerminal reports whether the reader is a terminal a person answers on.
	IsTerminal func(io.Reader) bool
}

func (g *globals) load() (plan.Config, bool, error) {
	if os.Getenv(persistentEnv) != "" {
		return plan.Config{}, false, cli.Usagef("%s is refused: accept the persistent enable in the answers file (remote.persistent_enable: yes) or by typing yes", persistentEnv)
	}
	cfg, _, err := g.spec.Load(g.flags)
	if err != nil {
		return cfg, false, &cli.Error{Code: cli.ExitUsage, Err: err}
	}
	given := os.Getenv(plan.EnvPrefix+"_CONFIG") != ""
	if f := g.flags.Lookup(config.ConfigFlag); f != nil && f.Changed {
		given = true
	}
	return cfg, given, nil
}

// InstallOptions are the install command's inputs.
type InstallOptions struct {
	g      *globals
	DryRun bool
	Yes    bool
	Wizard bool
	In     io.Reader
	Out    io.Writer
}

func newRootCmd() *cobra.Command {
	g := &globals{spec: plan.Spec(), Q: &qubes.Client{}, IsTerminal: readerIsTerminal}
	opts := &InstallOptions{g: g}
	root := &cobra.Command{
		Use:   "qubes-claw-install [--config answers.yaml] [--dry-run] [--yes]",
		Short: "Deploy qubes-claw in dom0: agent VM, tags, features, services, policy, qvm-remote",
		Long: `qubes-claw-install computes the deployment plan from the answers (built-in
defaults, /etc/qubes/qubes-claw-install.yaml or --config FILE, QCI_* variables,
flags) and applies it step by step, printing one line per step:

  [3/12] tags on claw-agent ... changed

Run again, it changes nothing and says so. On a terminal without --config it asks
every question (a wizard), shows the plan and asks before applying; --yes skips
that confirmation only.

qvm-remote-dom0 is enabled at boot only after you type exactly "yes" to its risk
warning, or, without a terminal, when the answers file says
remote.persistent_enable: yes. --yes never implies it.

'qubes-claw-install uninstall' undoes what the installer did.` + exitStatusHelp,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("unexpected arguments %q", args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.In, opts.Out = cmd.InOrStdin(), cmd.OutOrStdout()
			return runInstall(cmd.Context(), opts)
		},
	}
	root.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	root.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "apply without asking to confirm the plan (never enables qvm-remote-dom0 at boot)")
	root.Flags().BoolVar(&opts.Wizard, "wizard", false, "ask every question even with --config (needs a terminal)")
	g.flags = root.PersistentFlags()
	g.spec.AddFlags(g.flags)
	root.AddCommand(newUninstallCmd(g))
	return root
}

func runInstall(ctx context.Context, opts *InstallOptions) error {
	g := opts.g
	cfg, given, err := g.load()
	if err != nil {
		return err
	}
	terminal := g.IsTerminal(opts.In)
	in := bufio.NewReader(opts.In)
	p := &wizard.Prompter{In: in, Out: opts.Out}
	if opts.Wizard && !terminal {
		return cli.Usagef("--wizard needs a terminal on stdin")
	}
	if opts.Wizard || (terminal && !given) {
		vms, err := g.Q.List(ctx)
		if err != nil {
			return failure(err)
		}
		if err := wizard.Run(p, &cfg, vms); err != nil {
			return failure(err)
		}
		if err := cfg.Validate(); err != nil {
			return &cli.Error{Code: cli.ExitUsage, Err: err}
		}
	} else if terminal && cfg.Remote.Enabled && cfg.Remote.PersistentEnable == plan.Accept && !opts.DryRun {
		// A person is here: the answers file's yes is confirmed by a typed one.
		ok, err := p.ConfirmPersistent(cfg.Remote.VM)
		if err != nil {
			return failure(err)
		}
		if !ok {
			cfg.Remote.PersistentEnable = ""
		}
	}
	if err := plan.Check(ctx, &cfg, g.Q); err != nil {
		return failure(err)
	}
	items, err := plan.Build(&cfg)
	if err != nil {
		return failure(err)
	}
	rec, err := plan.LoadRecord(string(cfg.StateFile))
	if err != nil {
		return failure(err)
	}
	env := &plan.Env{Q: g.Q, Rec: rec}
	if opts.DryRun || (terminal && !opts.Yes) {
		steps, err := plan.Diff(ctx, items, env)
		if err != nil {
			return failure(err)
		}
		plan.PrintPlan(opts.Out, steps)
		if opts.DryRun {
			fmt.Fprintln(opts.Out, "dry run: nothing changed")
			return nil
		}
		ok, err := p.YesNo(fmt.Sprintf("Apply these %d steps", len(steps)), false)
		if err != nil {
			return failure(err)
		}
		if !ok {
			return cli.Exit(cli.ExitFailure, "not confirmed; nothing changed")
		}
	}
	changed, err := plan.Apply(ctx, items, env, string(cfg.StateFile), opts.Out)
	if err != nil {
		return failure(err)
	}
	if changed == 0 {
		fmt.Fprintln(opts.Out, "nothing to change: every step is unchanged")
	} else {
		fmt.Fprintf(opts.Out, "%d of %d steps changed\n", changed, len(items))
	}
	return nil
}

// failure is the report of a failed run: the step, the command, its stderr
// and what to do.
func failure(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	var b strings.Builder
	var se *plan.StepError
	if errors.As(err, &se) {
		fmt.Fprintf(&b, "step %d/%d failed: %s\n", se.Step, se.Total, se.Title)
	}
	fmt.Fprintf(&b, "  error: %v\n", err)
	var ce *qubes.CommandError
	if errors.As(err, &ce) {
		fmt.Fprintf(&b, "  command: %s (exit %d)\n", strings.Join(ce.Argv, " "), ce.ExitCode)
		if s := strings.TrimSpace(ce.Stderr); s != "" {
			fmt.Fprintf(&b, "  stderr: %s\n", strings.ReplaceAll(s, "\n", "\n          "))
		}
	}
	fmt.Fprintf(&b, "  what to do: %s", plan.Hint(err))
	code := cli.ExitFailure
	if errors.Is(err, plan.ErrInvalid) && se == nil {
		code = cli.ExitUsage
	}
	return cli.Exit(code, "%s", b.String())
}

func readerIsTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
