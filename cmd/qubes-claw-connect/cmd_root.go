package main

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/connect"
	"github.com/qubes-claw/qubes-claw/pkg/logging"
)

// Exit statuses; the caller (the tunnel, or qrexec-client's exit status)
// sees them.
const (
	exitConnect    = 1  // 127.0.0.1:PORT refused or unreachable
	exitBadArg     = 2  // no or malformed port argument
	exitNotAllowed = 3  // port not in the allow-list
	exitConfig     = 78 // unusable configuration
)

const exitStatusHelp = `
EXIT STATUS
  0    the connection ended (or the caller closed before sending anything)
  1    127.0.0.1:PORT refused or could not be reached
  2    no argument, or the argument is not a port (1..65535)
  3    the port is not in the allow-list (ports)
  78   configuration error
  130  interrupted`

// RootOptions are the handler's inputs.
type RootOptions struct {
	flags *pflag.FlagSet
	spec  config.Spec[connect.Config]
	// Arg is the port: QREXEC_SERVICE_ARGUMENT, else the first argument.
	Arg    string
	In     io.Reader
	Out    io.WriteCloser
	Stderr io.Writer
}

func newRootCmd() *cobra.Command {
	opts := &RootOptions{spec: connect.Spec()}
	root := &cobra.Command{
		Use:   connect.Program + " [PORT]",
		Short: "qrexec service " + connect.Service + ": connect a tunnel channel to 127.0.0.1:PORT",
		Long: `qubes-claw-connect is installed as the qrexec service ` + connect.Service + `
(/etc/qubes-rpc in a template, /usr/local/etc/qubes-rpc in a single AppVM).
qrexec runs it once per channel with the port as the argument
(QREXEC_SERVICE_ARGUMENT). Only the ports of the allow-list (key ports,
default 32125 and 18789) are served. The connection to 127.0.0.1:PORT (IPv4) is
made when the caller's first byte arrives, so callers may open channels ahead
of use; then bytes are copied both ways with half-close, until the server
closes its side. Any refusal is one log line on stderr and a non-zero exit,
with no connection made.` + exitStatusHelp,
		Args:          cobra.MaximumNArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Arg = os.Getenv("QREXEC_SERVICE_ARGUMENT")
			if len(args) == 1 && opts.Arg == "" {
				opts.Arg = args[0]
			}
			opts.In, opts.Stderr = cmd.InOrStdin(), cmd.ErrOrStderr()
			opts.Out = os.Stdout
			return runRoot(cmd.Context(), opts)
		},
	}
	opts.flags = root.PersistentFlags()
	opts.spec.AddFlags(opts.flags)
	return root
}

func runRoot(ctx context.Context, opts *RootOptions) error {
	cfg, _, err := opts.spec.Load(opts.flags)
	if err != nil {
		return &cli.Error{Code: exitConfig, Err: err}
	}
	logger, err := logging.New(cfg.Log, opts.Stderr)
	if err != nil {
		return &cli.Error{Code: exitConfig, Err: err}
	}
	defer logger.Close()
	log := logger.WithField("program", connect.Program)
	if src := os.Getenv("QREXEC_REMOTE_DOMAIN"); src != "" {
		log = log.WithField("source", src)
	}
	res, err := connect.Handle(ctx, cfg, opts.Arg, opts.In, opts.Out, log)
	if err == nil || errors.Is(err, context.Canceled) {
		log.WithField("port", res.Port).WithField("connected", res.Connected).
			WithField("bytes_in", res.In).WithField("bytes_out", res.Out).
			WithField("duration", res.Duration.Round(1e6)).Debug("channel closed")
		return err
	}
	// The refusal is logged here, once, and the exit status tells which.
	log.WithField("argument", opts.Arg).WithError(err).Error("refused")
	code := exitConnect
	switch {
	case errors.Is(err, connect.ErrBadArgument):
		code = exitBadArg
	case errors.Is(err, connect.ErrNotAllowed):
		code = exitNotAllowed
	}
	return cli.Status(code)
}
