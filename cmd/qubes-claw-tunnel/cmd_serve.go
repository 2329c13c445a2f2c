package main

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/logging"
	"github.com/qubes-claw/qubes-claw/pkg/qubes"
	"github.com/qubes-claw/qubes-claw/pkg/sdnotify"
	"github.com/qubes-claw/qubes-claw/pkg/tunnel"
	"github.com/qubes-claw/qubes-claw/pkg/version"
)

// ServeOptions are the serve command's inputs.
type ServeOptions struct {
	g *globals
	// Stderr receives the log.
	Stderr io.Writer
	// LookPath finds the qrexec tools (transport auto); tests replace it.
	LookPath func(string) (string, error)
}

func newServeCmd(g *globals, runF func(context.Context, *ServeOptions) error) *cobra.Command {
	opts := &ServeOptions{g: g, LookPath: exec.LookPath}
	return &cobra.Command{
		Use:   "serve",
		Short: "Run every configured tunnel until stopped",
		Long: `serve binds every tunnel's listen address, then forwards connections until
SIGINT or SIGTERM; open connections then get shutdown_grace to finish. While a
VM cannot be reached, its tunnel closes connections at once, logging why, and
tries again every retry_interval. One log line per connection tells its
tunnel, duration, bytes each way and how it ended.` + exitStatusHelp,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Stderr = cmd.ErrOrStderr()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runServe(cmd.Context(), opts)
		},
	}
}

// transport resolves "auto": dom0 has qrexec-client, VMs have only
// qrexec-client-vm.
func transport(cfg tunnel.Config, lookPath func(string) (string, error)) (string, error) {
	if cfg.Transport != tunnel.TransportAuto {
		return cfg.Transport, nil
	}
	if _, err := lookPath("qrexec-client"); err == nil {
		return tunnel.TransportDom0, nil
	}
	if _, err := lookPath("qrexec-client-vm"); err == nil {
		return tunnel.TransportVM, nil
	}
	return "", fmt.Errorf("transport auto: neither qrexec-client (dom0) nor qrexec-client-vm (VM) is on PATH")
}

func runServe(ctx context.Context, opts *ServeOptions) error {
	cfg, loaded, err := opts.g.load()
	if err != nil {
		return err
	}
	if err := cfg.CheckTunnels(); err != nil {
		return &cli.Error{Code: exitConfig, Err: err}
	}
	logger, err := logging.New(cfg.Log, opts.Stderr)
	if err != nil {
		return &cli.Error{Code: exitConfig, Err: err}
	}
	defer logger.Close()
	log := logger.WithField("program", tunnel.Program)
	tr, err := transport(cfg, opts.LookPath)
	if err != nil {
		return &cli.Error{Code: exitConfig, Err: err}
	}
	cfg.Transport = tr
	client := &qubes.Client{}
	var start tunnel.Starter
	if cfg.Autostart {
		if tr != tunnel.TransportDom0 {
			return &cli.Error{Code: exitConfig, Msg: "autostart works in dom0 only; in a VM the policy's autostart= decides"}
		}
		start = client.Start
	}
	d, err := tunnel.New(cfg, tunnel.QrexecOpener{Client: client, VMSide: tr == tunnel.TransportVM}, start, log)
	if err != nil {
		return &cli.Error{Code: exitConfig, Err: err}
	}
	if tr == tunnel.TransportDom0 {
		d.Probe = client.IsRunning
	}
	ctl, err := tunnel.ListenControl(string(cfg.RuntimeDir))
	if err != nil {
		return &cli.Error{Code: exitConfig, Err: err}
	}
	if err := d.Listen(); err != nil {
		ctl.Close()
		return &cli.Error{Code: exitConfig, Err: err}
	}
	log.WithField("version", version.String()).WithField("transport", tr).
		WithField("tunnels", len(cfg.Tunnels)).WithField("pool", cfg.Pool).
		WithField("config", strings.Join(loaded.Files, ",")).Info("starting")
	go d.ServeControl(ctx, ctl)
	if _, err := sdnotify.Notify(sdnotify.Ready); err != nil {
		log.WithError(err).Warn("sd_notify")
	}
	err = d.Serve(ctx)
	sdnotify.Notify(sdnotify.Stopping)
	log.Info("stopped")
	return err
}
