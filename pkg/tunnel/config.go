package tunnel

import (
	"fmt"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/connect"
	"github.com/qubes-claw/qubes-claw/pkg/logging"
	"github.com/qubes-claw/qubes-claw/pkg/policy"
	"github.com/qubes-claw/qubes-claw/pkg/qubes"
)

// Program is the daemon's binary name.
const Program = "qubes-claw-tunnel"

// EnvPrefix prefixes its environment variables.
const EnvPrefix = "QCTUNNEL"

// Transports: how channels are opened.
const (
	TransportAuto = "auto"
	// TransportDom0 runs qrexec-client -d VM (dom0; policy is not consulted).
	TransportDom0 = "dom0"
	// TransportVM runs qrexec-client-vm VM (a client VM; policy decides).
	TransportVM = "vm"
)

// Config is the daemon's configuration.
type Config struct {
	Log logging.Config `mapstructure:"log"`

	Tunnels []Tunnel `mapstructure:"tunnels" doc:"the tunnels: a list of {name, listen, vm, port, service}; see configs/qubes-claw-tunnel.yaml"`

	AllowNonLoopback bool   `mapstructure:"allow_non_loopback" doc:"permit listen addresses that are not loopback (anything that reaches them reaches the VM's port)"`
	Transport        string `mapstructure:"transport" flag:"transport" doc:"auto (dom0 if qrexec-client is on PATH, else vm), dom0 (qrexec-client -d), vm (qrexec-client-vm)"`
	Autostart        bool   `mapstructure:"autostart" doc:"start a halted VM when a connection arrives (dom0 transport; in a VM the policy's autostart decides)"`

	Pool           int           `mapstructure:"pool" doc:"channels kept open ahead of use per tunnel, so a connection does not wait for qrexec setup (0: open one per connection)"`
	MaxConnections int           `mapstructure:"max_connections" doc:"concurrent connections per tunnel; more are closed at once"`
	IdleTimeout    time.Duration `mapstructure:"idle_timeout" doc:"close a connection after this long without a byte either way (0: never)"`
	ConnectTimeout time.Duration `mapstructure:"connect_timeout" doc:"longest a connection waits for its qrexec channel (and the VM start, with autostart)"`
	RetryInterval  time.Duration `mapstructure:"retry_interval" doc:"while a VM is unreachable, how often the daemon tries a channel again (connections are refused meanwhile)"`
	ShutdownGrace  time.Duration `mapstructure:"shutdown_grace" doc:"how long open connections may finish when the daemon stops"`

	RuntimeDir config.Path `mapstructure:"runtime_dir" flag:"runtime-dir" doc:"directory of the control socket that status reads"`

	Policy PolicyConfig `mapstructure:"policy"`
}

// Tunnel is one forwarded port.
type Tunnel struct {
	// Name identifies the tunnel in logs and status.
	Name string `mapstructure:"name"`
	// Listen is the local address, an IP literal with a port.
	Listen string `mapstructure:"listen"`
	// VM is the qube running the service ("@default" in a client VM lets
	// policy pick it with target=).
	VM string `mapstructure:"vm"`
	// Port is the port in the VM (the call's argument).
	Port int `mapstructure:"port"`
	// Service is the qrexec service; empty means qubes-claw.Connect.
	Service string `mapstructure:"service"`
}

// PolicyConfig is what the rendered policy file and explain need.
type PolicyConfig struct {
	File          config.Path   `mapstructure:"file" doc:"policy file written by 'policy render --write' (name checked against qrexec's rules)"`
	Dirs          []config.Path `mapstructure:"dirs" doc:"policy directories explain reads, runtime first (it wins on equal names)"`
	ClientTag     string        `mapstructure:"client_tag" doc:"tag of the client VMs allowed to open tunnels"`
	ServerTag     string        `mapstructure:"server_tag" doc:"tag of the VM serving the ports (the agent VM)"`
	Ports         []int         `mapstructure:"ports" doc:"ports client VMs may reach (keep equal to qubes-claw-connect's ports)"`
	DefaultTarget string        `mapstructure:"default_target" doc:"VM that calls to @default are redirected to (empty: clients must name the VM)"`
	ClientStart   bool          `mapstructure:"client_autostart" doc:"let client calls start a halted server VM (autostart=yes in the rules)"`
}

// Defaults returns the built-in configuration. It has no tunnel: which VM
// serves the ports is the installation's choice.
func Defaults() Config {
	return Config{
		Log:            logging.Defaults(),
		Transport:      TransportAuto,
		Pool:           2,
		MaxConnections: 64,
		IdleTimeout:    time.Hour,
		ConnectTimeout: 10 * time.Second,
		RetryInterval:  2 * time.Second,
		ShutdownGrace:  5 * time.Second,
		RuntimeDir:     "/run/qubes-claw-tunnel",
		Policy:         DefaultPolicy(),
	}
}

// DefaultPolicy is the policy section's default.
func DefaultPolicy() PolicyConfig {
	return PolicyConfig{
		File:      "/etc/qubes/policy.d/50-qubes-claw.policy",
		Dirs:      []config.Path{"/run/qubes/policy.d", "/etc/qubes/policy.d"},
		ClientTag: "openclaw-client",
		ServerTag: "openclaw-server",
		Ports:     []int{connect.PortProxy, connect.PortGateway},
	}
}

// Spec is the daemon's configuration spec.
func Spec() config.Spec[Config] {
	return config.Spec[Config]{
		Program:    Program,
		EnvPrefix:  EnvPrefix,
		SystemFile: "/etc/qubes/qubes-claw-tunnel.yaml",
		Defaults:   Defaults,
	}
}

// Render returns the policy file's content for this configuration.
func (p PolicyConfig) Render() ([]byte, error) {
	return policy.Render(policy.RenderConfig{
		Service: connect.Service, ClientTag: p.ClientTag, ServerTag: p.ServerTag,
		Ports: p.Ports, DefaultTarget: p.DefaultTarget, Autostart: p.ClientStart,
	})
}

// Validate checks the configuration. Tunnels are checked by CheckTunnels,
// since commands such as status and policy need none.
func (c *Config) Validate() error {
	if err := c.Log.Validate(); err != nil {
		return err
	}
	switch c.Transport {
	case TransportAuto, TransportDom0, TransportVM:
	default:
		return fmt.Errorf("transport: %q is not auto, dom0 or vm", c.Transport)
	}
	if c.Pool < 0 || c.Pool > 64 {
		return fmt.Errorf("pool: must be 0..64")
	}
	if c.MaxConnections < 1 {
		return fmt.Errorf("max_connections: must be at least 1")
	}
	if c.IdleTimeout < 0 {
		return fmt.Errorf("idle_timeout: must not be negative")
	}
	if c.ConnectTimeout <= 0 || c.RetryInterval <= 0 || c.ShutdownGrace < 0 {
		return fmt.Errorf("connect_timeout, retry_interval: must be positive; shutdown_grace: not negative")
	}
	if c.RuntimeDir == "" {
		return fmt.Errorf("runtime_dir: empty")
	}
	if _, err := c.Policy.Render(); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	if err := policy.ValidFileName(string(c.Policy.File)); err != nil {
		return fmt.Errorf("policy.file: %w", err)
	}
	for i := range c.Tunnels {
		if c.Tunnels[i].Service == "" {
			c.Tunnels[i].Service = connect.Service
		}
	}
	return c.checkTunnels()
}

// CheckTunnels checks that there is at least one tunnel and that every
// tunnel is complete and unique.
func (c *Config) CheckTunnels() error {
	if len(c.Tunnels) == 0 {
		return fmt.Errorf("no tunnels configured (key tunnels)")
	}
	return c.checkTunnels()
}

func (c *Config) checkTunnels() error {
	names, addrs := map[string]bool{}, map[string]bool{}
	for i, t := range c.Tunnels {
		where := fmt.Sprintf("tunnels[%d]", i)
		if t.Name != "" {
			where = fmt.Sprintf("tunnel %q", t.Name)
		}
		switch {
		case t.Name == "":
			return fmt.Errorf("%s: name is empty", where)
		case names[t.Name]:
			return fmt.Errorf("%s: name used twice", where)
		case t.Port < 1 || t.Port > 65535:
			return fmt.Errorf("%s: port %d is not a TCP port", where, t.Port)
		}
		names[t.Name] = true
		if t.VM != "@default" {
			if err := qubes.ValidateVMName(t.VM); err != nil {
				return fmt.Errorf("%s: vm: %w", where, err)
			}
		}
		if err := qubes.ValidateService(t.Service); err != nil {
			return fmt.Errorf("%s: service: %w", where, err)
		}
		ap, err := config.ParseListen(t.Listen)
		if err != nil {
			return fmt.Errorf("%s: listen: %w", where, err)
		}
		if !ap.Addr().IsLoopback() && !c.AllowNonLoopback {
			return fmt.Errorf("%s: listen %s is not a loopback address (set allow_non_loopback to permit it)", where, t.Listen)
		}
		if addrs[ap.String()] && ap.Port() != 0 {
			return fmt.Errorf("%s: listen %s used twice", where, t.Listen)
		}
		addrs[ap.String()] = true
	}
	return nil
}
