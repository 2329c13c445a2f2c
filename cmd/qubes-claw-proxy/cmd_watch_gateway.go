package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/sdnotify"
)

// WatchGatewayOptions are the watch-gateway command's inputs.
type WatchGatewayOptions struct {
	Health string
	Argv   []string
	Stderr io.Writer
	// Poll is how often readiness is probed before READY=1.
	Poll time.Duration
}

func newWatchGatewayCmd() *cobra.Command {
	opts := &WatchGatewayOptions{Poll: 500 * time.Millisecond}
	cmd := &cobra.Command{
		Use:   "watch-gateway --health URL -- COMMAND [ARG...]",
		Short: "Run the OpenClaw gateway under systemd's watchdog (used by qubes-claw-gateway.service)",
		Long: `watch-gateway runs COMMAND (the OpenClaw gateway) as its child and speaks
sd_notify for it: READY=1 once URL answers HTTP, then WATCHDOG=1 only while it
keeps answering (any status below 500). A hung gateway thus misses the
unit's WatchdogSec and systemd restarts it; no shell watchdog is involved.
SIGTERM and SIGINT are passed to the child; the exit status is the child's.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 0 || len(args) == 0 {
				return cli.Usagef("usage: watch-gateway --health URL -- COMMAND [ARG...]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Argv, opts.Stderr = args, cmd.ErrOrStderr()
			return runWatchGateway(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Health, "health", "http://127.0.0.1:18789/", "URL probed for liveness")
	return cmd
}

func runWatchGateway(ctx context.Context, opts *WatchGatewayOptions) error {
	child := exec.Command(opts.Argv[0], opts.Argv[1:]...)
	child.Stdout, child.Stderr = os.Stdout, os.Stderr
	if err := child.Start(); err != nil {
		return &cli.Error{Code: exitConfig, Err: err}
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	probe := func(ctx context.Context) error { return probeAlive(ctx, opts.Health) }
	n := sdnotify.FromEnv()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		// READY=1 once the gateway answers; only then does the watchdog run.
		for wctx.Err() == nil {
			pctx, cancel := context.WithTimeout(wctx, 5*time.Second)
			err := probe(pctx)
			cancel()
			if err == nil {
				_ = n.Notify(sdnotify.Ready, sdnotify.Status("gateway answering on "+opts.Health))
				break
			}
			select {
			case <-wctx.Done():
				return
			case <-time.After(opts.Poll):
			}
		}
		if interval, err := sdnotify.WatchdogInterval(); err == nil {
			n.Keepalive(wctx, interval, probe, func(err error) {
				fmt.Fprintf(opts.Stderr, "watch-gateway: health check failed, withholding the watchdog ping: %v\n", err)
			})
		}
	}()
	select {
	case err := <-exited:
		return childExit(err)
	case <-ctx.Done():
		_ = n.Notify(sdnotify.Stopping)
		_ = child.Process.Signal(syscall.SIGTERM)
		return childExit(<-exited)
	}
}

// childExit passes the child's exit status on.
func childExit(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			if ws.Signal() == syscall.SIGTERM {
				return nil
			}
			code = 128 + int(ws.Signal())
		}
		return cli.Status(code)
	}
	return err
}

// probeAlive: any HTTP answer below 500 means the gateway's event loop runs.
func probeAlive(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
