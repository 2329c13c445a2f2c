package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy"
	"github.com/qubes-claw/qubes-claw/pkg/logging"
	"github.com/qubes-claw/qubes-claw/pkg/sdnotify"
)

var osGetenv = os.Getenv

// ServeOptions are the serve command's inputs.
type ServeOptions struct {
	g *globals
	// Stderr receives the log.
	Stderr io.Writer
	// Listener, when set, is used instead of listening on the configured
	// address (tests).
	Listener net.Listener
}

func newServeCmd(g *globals, runF func(context.Context, *ServeOptions) error) *cobra.Command {
	opts := &ServeOptions{g: g}
	return &cobra.Command{
		Use:   "serve",
		Short: "Serve the OpenAI-compatible API until stopped",
		Long: `serve loads the configuration, checks that the selected provider and its
fallbacks have their keys, and serves until SIGINT or SIGTERM; running requests
then get timeouts.shutdown to finish.` + exitStatusHelp,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("serve takes no arguments, got %q", args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Stderr = cmd.ErrOrStderr()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runServe(cmd.Context(), opts)
		},
	}
}

func runServe(ctx context.Context, opts *ServeOptions) error {
	cfg, loaded, err := opts.g.load()
	if err != nil {
		return err
	}
	logger, err := logging.New(cfg.Log, opts.Stderr)
	if err != nil {
		return &cli.Error{Code: exitConfig, Err: err}
	}
	defer logger.Close()
	for _, s := range llmproxy.Secrets(cfg) {
		logger.Redact(s)
	}
	chain, err := llmproxy.Chain(cfg, upstreamClient())
	if err != nil {
		return &cli.Error{Code: exitConfig, Err: err}
	}
	var usage io.Writer
	if cfg.UsageLog != "" {
		f, err := os.OpenFile(string(cfg.UsageLog), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return &cli.Error{Code: exitConfig, Msg: "usage_log", Err: err}
		}
		defer f.Close()
		usage = f
	}
	log := logger.WithField("program", llmproxy.Program)
	srv, err := llmproxy.NewServer(cfg, chain, log, usage)
	if err != nil {
		return &cli.Error{Code: exitConfig, Err: err}
	}
	ln := opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return err
		}
	}
	var fallback []string
	for _, p := range chain[1:] {
		fallback = append(fallback, p.Name())
	}
	log.WithField("listen", ln.Addr().String()).WithField("provider", cfg.Provider).
		WithField("fallback", strings.Join(fallback, ",")).WithField("config", strings.Join(loaded.Files, ",")).
		WithField("client_auth", cfg.Token != "").Info("serving")
	if cfg.Token == "" {
		log.Warn("no client token configured (token): any local process can use the provider keys")
	}
	// Under a Type=notify unit: ready once listening; the watchdog pings only
	// while our own /health answers, so a wedged server gets restarted.
	notifier := sdnotify.FromEnv()
	if interval, werr := sdnotify.WatchdogInterval(); werr == nil {
		health := "http://" + ln.Addr().String() + "/health"
		go notifier.Keepalive(ctx, interval, func(ctx context.Context) error { return probeHealth(ctx, health) },
			func(err error) { log.WithError(err).Warn("health self-check failed; withholding the watchdog ping") })
	}
	if err := notifier.Notify(sdnotify.Ready, sdnotify.Status("serving provider "+cfg.Provider+" on "+ln.Addr().String())); err != nil {
		log.WithError(err).Warn("sd_notify READY")
	}
	err = srv.Serve(ctx, ln)
	_ = notifier.Notify(sdnotify.Stopping)
	log.Info("stopped")
	return err
}

// probeHealth is the watchdog's check: GET /health answers 200.
func probeHealth(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// upstreamClient is the HTTP client for every provider. It has no overall
// timeout: streams are bounded by the request's timeouts instead.
func upstreamClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	return &http.Client{Transport: t}
}
