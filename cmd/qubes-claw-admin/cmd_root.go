package main

import (
	"context"
	"io"
	"net"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/logging"
	"github.com/qubes-claw/qubes-claw/pkg/sdnotify"
	"github.com/qubes-claw/qubes-claw/pkg/webadmin"
)

// exitConfig is returned when the configuration is unusable; the unit lists
// it in RestartPreventExitStatus, since restarting cannot help.
const exitConfig = 78

const exitStatusHelp = `
EXIT STATUS
  0    clean shutdown
  1    failure (e.g. the address is in use)
  2    bad invocation
  78   configuration error (its own, or qvm-remote-dom0's); not restarted
  130  interrupted`

// Options are the daemon's inputs.
type Options struct {
	flags *pflag.FlagSet
	spec  config.Spec[webadmin.Config]
	Err   io.Writer
	// Listener, when set, replaces listening on the configured address
	// (tests).
	Listener net.Listener
}

func newRootCmd() *cobra.Command {
	opts := &Options{spec: webadmin.Spec()}
	root := &cobra.Command{
		Use:   webadmin.Program,
		Short: "dom0 admin panel of qubes-claw on 127.0.0.1:9876",
		Long: `qubes-claw-admin serves dom0's admin panel on a loopback address (127.0.0.1:9876
by default; open it in dom0's browser): whether qvm-remote-dom0 runs and which VMs
it serves (key fingerprints only), the agent VM, the tunnel daemon, the LLM proxy
and the OpenClaw gateway reached through the tunnels, and qvm-remote's audit log
live, with the command history.

Its actions: start or stop qvm-remote-dom0 for this boot, restart the tunnel
daemon, revoke a VM's key (after typing its name). Enabling qvm-remote-dom0 at
boot is only possible from a terminal: sudo qvm-remote-dom0 enable.

Requests must name the panel's own address in their Host header, and every
state-changing request carries a CSRF token.` + exitStatusHelp,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("unknown command %q", args[0])
			}
			return nil
		},
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Err = cmd.ErrOrStderr()
			return run(cmd.Context(), opts)
		},
	}
	opts.flags = root.Flags()
	opts.spec.AddFlags(opts.flags)
	return root
}

func run(ctx context.Context, opts *Options) error {
	cfg, loaded, err := opts.spec.Load(opts.flags)
	if err != nil {
		return &cli.Error{Code: exitConfig, Err: err}
	}
	logger, err := logging.New(cfg.Log, opts.Err)
	if err != nil {
		return &cli.Error{Code: exitConfig, Err: err}
	}
	defer logger.Close()
	log := logger.WithField("program", webadmin.Program)
	d, err := webadmin.New(cfg, log)
	if err != nil {
		return &cli.Error{Code: exitConfig, Err: err}
	}
	ln := opts.Listener
	if ln == nil {
		if ln, err = d.Listen(); err != nil {
			return err
		}
	}
	url := "http://" + ln.Addr().String() + "/"
	log.WithField("url", url).WithField("audit", d.AuditSource).
		WithField("config", strings.Join(loaded.Files, ",")).Info("serving")
	n := sdnotify.FromEnv()
	if err := n.Notify(sdnotify.Ready, sdnotify.Status("serving "+url)); err != nil {
		log.WithError(err).Warn("sd_notify READY")
	}
	err = d.Serve(ctx, ln)
	_ = n.Notify(sdnotify.Stopping)
	log.Info("stopped")
	return err
}
