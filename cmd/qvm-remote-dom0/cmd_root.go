package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/logging"
	"github.com/qubes-claw/qubes-claw/pkg/qubes"
	"github.com/qubes-claw/qubes-claw/pkg/remote/audit"
	"github.com/qubes-claw/qubes-claw/pkg/remote/daemon"
	"github.com/qubes-claw/qubes-claw/pkg/remote/keys"
)

// exitConfig is returned when the configuration is unusable; the unit lists
// it in RestartPreventExitStatus, since restarting cannot help.
const exitConfig = 78

// unitName is the systemd unit the package installs (never enabled by it).
const unitName = "qvm-remote-dom0.service"

const exitStatusHelp = `
EXIT STATUS
  0    success (the daemon: clean shutdown)
  1    failure (enable/disable: not confirmed, or systemctl failed)
  2    bad invocation
  78   configuration error, or the state is held by another daemon; not restarted
  130  interrupted`

// globals carries what every subcommand shares: the config flags.
type globals struct {
	flags *pflag.FlagSet
	spec  config.Spec[daemon.Config]
}

func (g *globals) load() (daemon.Config, error) {
	cfg, _, err := g.spec.Load(g.flags)
	if err != nil {
		return cfg, &cli.Error{Code: exitConfig, Err: err}
	}
	return cfg, nil
}

// RunOptions are the daemon's inputs.
type RunOptions struct {
	g      *globals
	Once   bool
	DryRun bool
	VMs    []string
	Out    io.Writer
	Err    io.Writer
	// Open replaces the qvm-run channel opener (tests).
	Open daemon.Opener
}

func newRootCmd() *cobra.Command {
	g := &globals{spec: daemon.Spec()}
	opts := &RunOptions{g: g}
	root := &cobra.Command{
		Use:   "qvm-remote-dom0 [--once] [--dry-run] [--vm VM]...",
		Short: "dom0 daemon of qvm-remote: runs authenticated commands queued in VMs",
		Long: `qvm-remote-dom0 opens a channel into every served VM that runs (qvm-run
--pass-io --no-autostart --no-gui VM 'qvm-remote serve'; it never starts a VM) and
runs the commands the VM queues, once each token checks out against the VM's key.

Served VMs: those under "vms" in the config, those in the 1.x QVM_REMOTE_VMS of
/etc/qubes/remote.conf, and every VM with a key in /etc/qubes/remote.d (a VM
authorized while the daemon runs is served at once). A VM that starts is served as
soon as its qrexec socket appears; SIGUSR1 makes every halted VM's channel be
retried at once.

The systemd unit is installed but not enabled: see 'qvm-remote-dom0 enable'.` + exitStatusHelp,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("unknown command %q", args[0])
			}
			return nil
		},
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out, opts.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return runDaemon(cmd.Context(), opts)
		},
	}
	root.Flags().BoolVar(&opts.Once, "once", false, "answer what each running VM has queued, then exit")
	root.Flags().BoolVar(&opts.DryRun, "dry-run", false, "like --once, but only print what would run; the commands stay queued")
	root.Flags().StringSliceVar(&opts.VMs, "vm", nil, "serve only this VM (repeatable)")
	g.flags = root.PersistentFlags()
	g.spec.AddFlags(g.flags)
	root.AddCommand(newAuthorizeCmd(g), newRevokeCmd(g), newKeysCmd(g), newEnableCmd(g), newDisableCmd(g))
	return root
}

func runDaemon(ctx context.Context, opts *RunOptions) error {
	cfg, err := opts.g.load()
	if err != nil {
		return err
	}
	logger, err := logging.New(cfg.Log, opts.Err)
	if err != nil {
		return &cli.Error{Code: exitConfig, Err: err}
	}
	defer logger.Close()
	// Keys never reach the log by design; redaction is the second line.
	if entries, err := (keys.Store{Dir: string(cfg.KeyDir)}).List(); err == nil {
		for _, e := range entries {
			if k, err := (keys.Store{Dir: string(cfg.KeyDir)}).Get(e.VM); err == nil {
				logger.Redact(k.Hex())
			}
		}
	}
	log := logger.WithField("program", daemon.Program)
	open := opts.Open
	if open == nil {
		open = daemon.QubesOpener(&qubes.Client{}, cfg.VMCommand)
	}
	d, err := daemon.New(cfg, log, open)
	if err != nil {
		return &cli.Error{Code: exitConfig, Err: err}
	}
	defer d.Close()
	d.Once, d.DryRun = opts.Once, opts.DryRun
	var mu sync.Mutex
	d.Report = func(e daemon.DryRunEntry) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(opts.Out, "%s %s: %s\n", e.VM, e.ID, e.Verdict)
		if e.Body != nil {
			fmt.Fprintf(opts.Out, "    %s\n", audit.Command(e.Body)["cmd"])
		}
	}
	var vms []string
	if len(opts.VMs) > 0 {
		if vms, err = d.ServedVMs(opts.VMs); err != nil {
			return cli.Usagef("%v", err)
		}
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	go func() {
		for range usr1 {
			log.Info("SIGUSR1: retrying every VM without a channel now")
			d.Wake("")
		}
	}()
	log.WithField("pid", strconv.Itoa(os.Getpid())).Debug("starting")
	return d.Run(ctx, vms)
}
