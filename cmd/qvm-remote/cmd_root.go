package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/remote/agent"
	"github.com/qubes-claw/qubes-claw/pkg/remote/client"
	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
	"github.com/qubes-claw/qubes-claw/pkg/remote/queue"
)

// Exit statuses beyond the command's own.
const (
	exitTimeout = 124
	exitRemote  = client.ExitRemote // dom0 did not run the command (as ssh)
)

const exitStatusHelp = `
EXIT STATUS
  N    the command's own exit status (0..255)
  124  the command was killed at its timeout
  255  dom0 did not run the command (rejected, denied by policy, busy,
       interrupted, daemon not responding); the reason is printed on stderr
  2    bad invocation of qvm-remote itself
  130  interrupted (the command may still run in dom0)`

// globals carries what every subcommand shares: the config flags.
type globals struct {
	flags *pflag.FlagSet
	spec  config.Spec[client.Config]
}

func (g *globals) load() (client.Config, error) {
	cfg, _, err := g.spec.Load(g.flags)
	if err != nil {
		return cfg, &cli.Error{Code: exitRemote, Err: err}
	}
	return cfg, nil
}

// ExecOptions are the inputs of the default mode: run a command.
type ExecOptions struct {
	g *globals
	// TimeoutSecs is -t; negative means not given.
	TimeoutSecs int
	Verbose     bool
	Quiet       bool
	Args        []string
	In          io.Reader
	Out, Err    io.Writer
	// InTerminal reports whether stdin is a terminal (no script to read).
	InTerminal func() bool
}

func newRootCmd() *cobra.Command {
	g := &globals{spec: client.Spec()}
	opts := &ExecOptions{g: g}
	root := &cobra.Command{
		Use:   "qvm-remote [-t SEC] [-v] [-q] COMMAND [ARGS...]",
		Short: "Run a command in dom0 from this VM, like ssh",
		Long: `qvm-remote runs COMMAND in dom0 and prints its stdout and stderr as they are
produced, then exits with its exit status. ARGS are joined with spaces, as ssh
does. Without COMMAND the script is read from stdin:

  qvm-remote 'qvm-ls --running'
  echo 'xl info' | qvm-remote
  qvm-remote < script.sh

dom0 must authorize this VM's key first: run 'qvm-remote key gen' here, then
'qvm-remote-dom0 authorize VM' in dom0. A command named like a subcommand
(e.g. status) is run with 'qvm-remote -- status'.` + exitStatusHelp,
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Args = args
			opts.In, opts.Out, opts.Err = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			opts.InTerminal = func() bool { return isTerminal(opts.In) }
			return runExec(cmd.Context(), opts)
		},
	}
	// Flags stop at the command: `qvm-remote ls -la` passes -la to ls.
	root.Flags().SetInterspersed(false)
	root.Flags().IntVarP(&opts.TimeoutSecs, "timeout", "t", -1, "timeout in seconds asked of dom0 (default: the config's timeout, else dom0's)")
	root.Flags().BoolVarP(&opts.Verbose, "verbose", "v", false, "print the command id and how it ended on stderr")
	root.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "print no message of qvm-remote's own (the exit status still tells)")
	g.flags = root.PersistentFlags()
	g.spec.AddFlags(g.flags)
	root.AddCommand(newKeyCmd(g), newPingCmd(g), newStatusCmd(g), newQueueCmd(g),
		newLogCmd(g), newHistoryCmd(g), newServeCmd(g))
	return root
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func runExec(ctx context.Context, opts *ExecOptions) error {
	if opts.Verbose && opts.Quiet {
		return cli.Usagef("-v and -q exclude each other")
	}
	cfg, err := opts.g.load()
	if err != nil {
		return err
	}
	var body []byte
	switch {
	case len(opts.Args) > 0:
		body = []byte(strings.Join(opts.Args, " "))
	case opts.InTerminal():
		return cli.Usagef("no command: give one as arguments or pipe a script into stdin")
	default:
		if body, err = io.ReadAll(io.LimitReader(opts.In, int64(cfg.MaxCommandSize)+1)); err != nil {
			return remoteErr(opts, "read the script from stdin: %v", err)
		}
	}
	timeout := cfg.Timeout
	if opts.TimeoutSecs >= 0 {
		if opts.TimeoutSecs == 0 || opts.TimeoutSecs > 1<<31 {
			return cli.Usagef("-t: %d is not a timeout in seconds (1 or more)", opts.TimeoutSecs)
		}
		timeout = time.Duration(opts.TimeoutSecs) * time.Second
	}
	q := queue.Dir(cfg.QueueDir)
	res, err := submit(ctx, cfg, q, body, timeout, opts.Out, opts.Err, func(msg string) {
		if opts.Verbose {
			fmt.Fprintf(opts.Err, "qvm-remote: %s\n", msg)
		}
	})
	if err != nil {
		return err
	}
	switch {
	case res.Reason != "":
		return remoteErr(opts, "%s", res.Reason)
	case res.TimedOut:
		if !opts.Quiet {
			fmt.Fprintf(opts.Err, "qvm-remote: command timed out\n")
		}
		return cli.Status(exitTimeout)
	case res.Code != 0:
		return cli.Status(res.Code)
	}
	return nil
}

// submit runs one command: everything the default mode and ping share.
// Failures to get an answer are returned as exit-255 errors.
func submit(ctx context.Context, cfg client.Config, q queue.Dir, body []byte, timeout time.Duration, stdout, stderr io.Writer, note func(string)) (client.Result, error) {
	key, err := client.ReadKey(q)
	if err != nil {
		return client.Result{}, cli.Exit(exitRemote, "%v", err)
	}
	vm, source, err := client.VMName(ctx, cfg.VMName, q)
	if err != nil {
		return client.Result{}, cli.Exit(exitRemote, "%v", err)
	}
	if !agent.Serving(q) {
		note("dom0 has no channel open to this VM yet; waiting up to " + cfg.PickupTimeout.String())
	}
	if source == client.SourceHostname {
		// Only a guess (no qubesdb): wait for dom0 to say the name rather
		// than sign with one it may refuse.
		note("waiting for dom0 to announce this VM's name")
		if vm, err = client.WaitAnnounced(ctx, q, cfg.PickupTimeout); err != nil {
			return client.Result{}, cli.Exit(exitRemote, "daemon not responding: dom0 opened no channel to this VM within %s, and without qubesdb this VM's name is unknown (set vm_name)", cfg.PickupTimeout)
		}
		source = "announced by dom0"
	}
	start := time.Now()
	res, err := client.Run(ctx, client.Request{
		Queue: q, VM: vm, Key: key, Body: body, Timeout: timeout,
		MaxBody: cfg.MaxCommandSize, PickupTimeout: cfg.PickupTimeout, Slack: cfg.Slack,
		Stdout: stdout, Stderr: stderr,
		Submitted: func(id proto.ID) { note(fmt.Sprintf("queued %s as VM %s (%s)", id, vm, source)) },
	})
	now := time.Now()
	switch {
	case errors.Is(err, client.ErrNotResponding):
		return res, cli.Exit(exitRemote, "daemon not responding: no channel from dom0 took the command within %s (is qvm-remote-dom0 running and this VM authorized?)", cfg.PickupTimeout)
	case errors.Is(err, client.ErrNoResult):
		return res, cli.Exit(exitRemote, "daemon not responding: no result from dom0 in time")
	case errors.Is(err, context.Canceled):
		return res, err
	case err != nil:
		return res, cli.Exit(exitRemote, "%v", err)
	}
	status := "exited"
	switch {
	case res.Reason != "":
		status = "refused"
	case res.TimedOut:
		status = "timeout"
	}
	if res.ID != "" {
		q.AppendAudit(now, res.ID, status, res.Code, body)
		q.PruneHistory(cfg.HistoryDays, now)
	}
	note(fmt.Sprintf("%s %s, exit %d, %s", res.ID, status, res.Code, now.Sub(start).Round(time.Millisecond)))
	if res.Truncated != "" {
		note("output truncated by dom0: " + res.Truncated)
	}
	return res, nil
}

// remoteErr is the exit-255 "dom0 did not run it" error; -q keeps it silent.
func remoteErr(opts *ExecOptions, format string, a ...any) error {
	if opts.Quiet {
		return cli.Status(exitRemote)
	}
	return cli.Exit(exitRemote, format, a...)
}
