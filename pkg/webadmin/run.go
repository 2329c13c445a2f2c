package webadmin

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/qubes-claw/qubes-claw/pkg/qubes"
	"github.com/qubes-claw/qubes-claw/pkg/remote/daemon"
	"github.com/qubes-claw/qubes-claw/pkg/remote/keys"
)

// shutdownGrace bounds how long open requests may finish at stop.
const shutdownGrace = 5 * time.Second

// auditBacklog is how much of the end of the audit log is shown at start.
const auditBacklog = 256 << 10

// Daemon is the running panel: the audit feed, the backend and the server.
type Daemon struct {
	Cfg    Config
	Log    *logrus.Entry
	Feed   *Feed
	System *System
	// AuditSource says what the live log follows, for the start-up line.
	AuditSource  string
	remoteKeyDir string
	auditFile    string
}

// New prepares the panel: it reads qvm-remote-dom0's configuration (its
// key directory and log file are the panel's data), without serving yet.
func New(cfg Config, log *logrus.Entry) (*Daemon, error) {
	spec := daemon.Spec()
	spec.SystemFile = cfg.Remote.Config
	rcfg, _, err := spec.Load(nil)
	if err != nil {
		return nil, fmt.Errorf("qvm-remote-dom0's configuration (remote.config): %w", err)
	}
	d := &Daemon{Cfg: cfg, Log: log, Feed: NewFeed(cfg.Remote.History), remoteKeyDir: string(rcfg.KeyDir)}
	switch {
	case cfg.Remote.AuditLog != "":
		d.auditFile = string(cfg.Remote.AuditLog)
	case rcfg.Log.File != "":
		d.auditFile = string(rcfg.Log.File)
	}
	if d.auditFile != "" {
		d.AuditSource = "file " + d.auditFile
	} else {
		d.AuditSource = "journalctl -u " + cfg.Remote.Unit
	}
	d.System = &System{
		Cfg:   cfg,
		Qubes: &qubes.Client{Timeout: cfg.ProbeTimeout},
		Keys:  keys.Store{Dir: d.remoteKeyDir},
		Feed:  d.Feed,
		Client: &http.Client{
			Timeout: cfg.ProbeTimeout,
			// Probes go to loopback through the tunnels only, never via a
			// proxy from the environment.
			Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	return d, nil
}

// Listen binds the configured loopback address.
func (d *Daemon) Listen() (net.Listener, error) {
	ap, err := loopbackAddr(d.Cfg.Listen)
	if err != nil {
		return nil, err
	}
	return net.Listen("tcp", ap.String())
}

// Serve follows the audit log and serves ln until ctx ends.
func (d *Daemon) Serve(ctx context.Context, ln net.Listener) error {
	srv, err := NewServer(d.Cfg, ln.Addr().String(), d.System, d.Feed, d.Log)
	if err != nil {
		return err
	}
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	alog := d.Log.WithField("component", "audit-follow")
	if d.auditFile != "" {
		go FollowFile(fctx, d.auditFile, auditBacklog, d.Feed, alog)
	} else {
		jc, err := exec.LookPath("journalctl")
		if err != nil {
			alog.WithError(err).Warn("no journalctl: the live audit log stays empty (set remote.audit_log)")
		} else {
			go FollowJournal(fctx, jc, d.Cfg.Remote.Unit, 500, d.Feed, alog)
		}
	}
	return Serve(ctx, ln, srv.Handler(), shutdownGrace)
}

// KeyDir is the qvm-remote key directory the panel reads.
func (d *Daemon) KeyDir() string { return d.remoteKeyDir }
