package webadmin

import (
	"fmt"
	"net/netip"
	"net/url"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/logging"
	"github.com/qubes-claw/qubes-claw/pkg/qubes"
)

// Program is the panel's binary name.
const Program = "qubes-claw-admin"

// EnvPrefix prefixes its environment variables.
const EnvPrefix = "QCADMIN"

// Config is the panel's configuration.
type Config struct {
	Log logging.Config `mapstructure:"log"`

	Listen       string        `mapstructure:"listen" flag:"listen" doc:"loopback address and port the panel serves on (an IP literal; anything but loopback is refused)"`
	Refresh      time.Duration `mapstructure:"refresh" doc:"how often an open page re-reads the overview (the state is gathered at most once per interval, however many pages are open)"`
	ProbeTimeout time.Duration `mapstructure:"probe_timeout" doc:"bound on each check the overview runs (a qvm-* tool, systemctl, an HTTP probe)"`

	Remote  RemoteConfig `mapstructure:"remote"`
	Agent   AgentConfig  `mapstructure:"agent"`
	Tunnel  TunnelConfig `mapstructure:"tunnel"`
	Proxy   ProbeConfig  `mapstructure:"proxy"`
	Gateway ProbeConfig  `mapstructure:"gateway"`
}

// RemoteConfig locates qvm-remote-dom0 and its audit log.
type RemoteConfig struct {
	Unit     string      `mapstructure:"unit" doc:"systemd unit of the qvm-remote dom0 daemon"`
	Config   config.Path `mapstructure:"config" doc:"the daemon's config file, read for its key directory and log file"`
	AuditLog config.Path `mapstructure:"audit_log" doc:"file the live audit log follows (empty: the daemon's log.file; if that is empty too, journalctl -f -u the unit)"`
	History  int         `mapstructure:"history" doc:"audit lines and commands kept in memory for the page"`
}

// AgentConfig names the agent VM.
type AgentConfig struct {
	VM  string `mapstructure:"vm" flag:"agent" doc:"the agent VM (empty: the VM carrying agent.tag)"`
	Tag string `mapstructure:"tag" doc:"tag marking the agent VM (the tunnel policy's server tag)"`
}

// TunnelConfig locates the tunnel daemon.
type TunnelConfig struct {
	Unit       string      `mapstructure:"unit" doc:"systemd unit of qubes-claw-tunnel (restarted by the page's restart action)"`
	RuntimeDir config.Path `mapstructure:"runtime_dir" doc:"qubes-claw-tunnel's runtime directory, whose control socket reports each tunnel"`
}

// ProbeConfig is an HTTP endpoint the overview probes.
type ProbeConfig struct {
	URL string `mapstructure:"url" doc:"URL probed through the tunnel (must be on loopback: dom0 has no other network)"`
}

// Defaults returns the built-in configuration.
func Defaults() Config {
	return Config{
		Log:          logging.Defaults(),
		Listen:       "127.0.0.1:9876",
		Refresh:      2 * time.Second,
		ProbeTimeout: 5 * time.Second,
		Remote: RemoteConfig{
			Unit:    "qvm-remote-dom0.service",
			Config:  "/etc/qubes/qvm-remote-dom0.yaml",
			History: 500,
		},
		Agent:   AgentConfig{Tag: "openclaw-server"},
		Tunnel:  TunnelConfig{Unit: "qubes-claw-tunnel.service", RuntimeDir: "/run/qubes-claw-tunnel"},
		Proxy:   ProbeConfig{URL: "http://127.0.0.1:32125/health"},
		Gateway: ProbeConfig{URL: "http://127.0.0.1:18789/"},
	}
}

// Spec is the panel's configuration spec.
func Spec() config.Spec[Config] {
	return config.Spec[Config]{
		Program:    Program,
		EnvPrefix:  EnvPrefix,
		SystemFile: "/etc/qubes/qubes-claw-admin.yaml",
		Defaults:   Defaults,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if err := c.Log.Validate(); err != nil {
		return err
	}
	if _, err := loopbackAddr(c.Listen); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if c.Refresh < 100*time.Millisecond {
		return fmt.Errorf("refresh: must be at least 100ms")
	}
	if c.ProbeTimeout <= 0 {
		return fmt.Errorf("probe_timeout: must be positive")
	}
	if c.Remote.History < 1 {
		return fmt.Errorf("remote.history: must be at least 1")
	}
	for name, u := range map[string]string{"remote.unit": c.Remote.Unit, "tunnel.unit": c.Tunnel.Unit} {
		if u == "" {
			return fmt.Errorf("%s: empty", name)
		}
	}
	if c.Agent.VM != "" {
		if err := qubes.ValidateVMName(c.Agent.VM); err != nil {
			return fmt.Errorf("agent.vm: %w", err)
		}
	} else if err := qubes.ValidateTag(c.Agent.Tag); err != nil {
		return fmt.Errorf("agent.tag: %w", err)
	}
	for name, raw := range map[string]string{"proxy.url": c.Proxy.URL, "gateway.url": c.Gateway.URL} {
		if raw == "" {
			continue
		}
		if err := loopbackURL(raw); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// loopbackAddr parses HOST:PORT with a loopback IP literal.
func loopbackAddr(s string) (netip.AddrPort, error) {
	ap, err := config.ParseListen(s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if !ap.Addr().IsLoopback() {
		return netip.AddrPort{}, fmt.Errorf("%s is not a loopback address", ap.Addr())
	}
	return ap, nil
}

// loopbackURL accepts only http URLs on a loopback IP or localhost: the
// probes run from dom0, which must not reach anything else.
func loopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "http" {
		return fmt.Errorf("%q: only http:// URLs (the tunnels are plain TCP on loopback)", raw)
	}
	h := u.Hostname()
	if h == "localhost" {
		return nil
	}
	a, err := netip.ParseAddr(h)
	if err != nil || !a.Unmap().IsLoopback() {
		return fmt.Errorf("%q: host must be a loopback address", raw)
	}
	return nil
}
