package plan

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/logging"
	"github.com/qubes-claw/qubes-claw/pkg/qubes"
)

// Program is the installer's binary name.
const Program = "qubes-claw-install"

// EnvPrefix prefixes its environment variables.
const EnvPrefix = "QCI"

// Accept is the one value of remote.persistent_enable that enables
// qvm-remote-dom0 at boot without a terminal.
const Accept = "yes"

// Labels are the eight Qubes labels (qubes.md §4.4, qvm.prefs label).
var Labels = []string{"red", "orange", "yellow", "green", "gray", "blue", "purple", "black"}

// Classes the agent VM may have.
var Classes = []string{"StandaloneVM", "AppVM"}

// Config is the answers file: everything the plan is computed from. VM
// names are values (keys are case-insensitive).
type Config struct {
	Log logging.Config `mapstructure:"log"`

	Agent   Agent   `mapstructure:"agent"`
	Clients Clients `mapstructure:"clients"`
	Ports   []int   `mapstructure:"ports" doc:"loopback ports of the agent VM reached through qrexec: the LLM proxy and the OpenClaw gateway"`
	Policy  Policy  `mapstructure:"policy"`
	Tunnel  Tunnel  `mapstructure:"tunnel"`
	Setup   Setup   `mapstructure:"setup"`
	Remote  Remote  `mapstructure:"remote"`

	StateFile config.Path `mapstructure:"state_file" doc:"what the installer created and the values it replaced, so uninstall can undo exactly that"`
}

// Agent is the agent VM.
type Agent struct {
	Name        string   `mapstructure:"name" flag:"agent" doc:"agent VM name"`
	Class       string   `mapstructure:"class" doc:"StandaloneVM (everything persists) or AppVM (only /home, /rw, /usr/local persist)"`
	Template    string   `mapstructure:"template" flag:"template" doc:"template the agent VM is created from (StandaloneVM: cloned); must exist"`
	Label       string   `mapstructure:"label" doc:"label (color): red, orange, yellow, green, gray, blue, purple, black"`
	NetVM       string   `mapstructure:"netvm" doc:"netvm: a VM name, none for no network, empty for the Qubes default"`
	Memory      int      `mapstructure:"memory" doc:"initial memory, MiB"`
	MaxMem      int      `mapstructure:"maxmem" doc:"maximum memory, MiB (0 disables memory balancing)"`
	VCPUs       int      `mapstructure:"vcpus" doc:"virtual CPUs"`
	Autostart   bool     `mapstructure:"autostart" doc:"start the agent VM at boot"`
	Tag         string   `mapstructure:"tag" doc:"tag marking the agent VM as the server the policy lets clients reach"`
	Services    []string `mapstructure:"services" doc:"qvm-service flags turned on in the agent VM (they gate the VM's units)"`
	Description string   `mapstructure:"description" doc:"description stored in the qubes-claw.description feature"`
}

// Clients are the VMs allowed to reach the agent VM's ports.
type Clients struct {
	VMs []string `mapstructure:"vms" flag:"client" doc:"VMs tagged as clients (they may reach the ports through qrexec)"`
	Tag string   `mapstructure:"tag" doc:"tag marking client VMs"`
}

// Policy is our qrexec policy file.
type Policy struct {
	File    config.Path `mapstructure:"file" doc:"the policy file the installer writes, rendered by qubes-claw-tunnel's renderer (not the packaged 50-qubes-claw.policy: a file has one owner); sorted before it and ending in a deny for the service, so it alone decides"`
	Service string      `mapstructure:"service" doc:"qrexec service of the agent VM's connect handler"`
}

// Tunnel is dom0's qubes-claw-tunnel: 127.0.0.1 ports in dom0 forwarded to
// the agent VM's ports.
type Tunnel struct {
	Enabled bool        `mapstructure:"enabled" doc:"run qubes-claw-tunnel in dom0 (its config written, its unit enabled and started)"`
	Listen  []string    `mapstructure:"listen" doc:"dom0 listen address of each port, in the order of ports (empty: 127.0.0.1:PORT for every port)"`
	Config  config.Path `mapstructure:"config" doc:"the tunnel daemon's config file (written whole; uninstall puts back the previous one)"`
	Unit    string      `mapstructure:"unit" doc:"systemd unit of qubes-claw-tunnel"`
}

// Setup is the VM side, run in the agent VM as root through qvm-run:
// qubes-claw-connect's allow-list and qubes-claw-proxy setup.
type Setup struct {
	Enabled  bool   `mapstructure:"enabled" doc:"set up the agent VM: the qrexec handler's ports and qubes-claw-proxy setup (provider, user units, linger)"`
	Provider string `mapstructure:"provider" doc:"LLM provider: openai, anthropic, ollama or cursor (empty: the VM's proxy config decides)"`
	BaseURL  string `mapstructure:"base_url" doc:"the provider's base URL (empty: the provider's default)"`
	// APIKeyFile is read in dom0; the key reaches the VM on qvm-run's
	// stdin, never on a command line, which every process could read.
	APIKeyFile config.Path `mapstructure:"api_key_file" doc:"dom0 file holding the provider's API key (sent to the VM on stdin; empty: no key, e.g. ollama)"`
}

// Remote is qvm-remote: which VM may run commands in dom0.
type Remote struct {
	Enabled bool `mapstructure:"enabled" doc:"authorize a VM for qvm-remote at all"`
	// VM is the authorized VM: by default a separate network-less admin VM.
	VM             string      `mapstructure:"vm" flag:"remote-vm" doc:"the VM authorized to run commands in dom0 (default: a separate admin VM without network)"`
	Create         bool        `mapstructure:"create" doc:"create remote.vm if missing (AppVM, netvm none)"`
	Label          string      `mapstructure:"label" doc:"label of a created admin VM (its own, to tell it apart)"`
	Template       string      `mapstructure:"template" doc:"template of a created admin VM (empty: agent.template); it must provide qvm-remote"`
	AuthorizeAgent bool        `mapstructure:"authorize_agent" doc:"explicit choice to authorize the agent VM itself (internet + dom0 is the worst case); restricted mode by default"`
	Mode           string      `mapstructure:"mode" doc:"full (any command) or restricted (allow list only); the agent VM is always restricted unless agent_mode says full"`
	AgentMode      string      `mapstructure:"agent_mode" doc:"mode when the agent VM is authorized: restricted (default) or full"`
	Allow          []string    `mapstructure:"allow" doc:"restricted mode: command patterns (* and ?) a whole command must match"`
	KeyDir         config.Path `mapstructure:"key_dir" doc:"qvm-remote-dom0's key directory"`
	DaemonConfig   config.Path `mapstructure:"daemon_config" doc:"qvm-remote-dom0's config file (edited only for restricted VMs: their vms entry)"`
	Unit           string      `mapstructure:"unit" doc:"systemd unit of qvm-remote-dom0"`
	// PersistentEnable is the acceptance field: only "yes" enables the
	// daemon at boot without a terminal.
	PersistentEnable string `mapstructure:"persistent_enable" doc:"enable qvm-remote-dom0 at every boot: only the exact value yes accepts the risk (without a terminal this field is the only way; --yes does not imply it)"`
}

// Defaults returns the built-in answers.
func Defaults() Config {
	return Config{
		Log: logging.Defaults(),
		Agent: Agent{
			Name: "claw-agent", Class: "StandaloneVM", Label: "purple",
			Memory: 800, MaxMem: 4000, VCPUs: 2, Autostart: true,
			Tag:         "openclaw-server",
			Services:    []string{"qubes-claw-proxy", "qubes-claw-gateway"},
			Description: "OpenClaw agent VM (qubes-claw)",
		},
		Clients: Clients{Tag: "openclaw-client"},
		Ports:   []int{32125, 18789},
		Policy: Policy{
			File:    "/etc/qubes/policy.d/40-qubes-claw-install.policy",
			Service: "qubes-claw.Connect",
		},
		Tunnel: Tunnel{
			Enabled: true,
			Config:  "/etc/qubes/qubes-claw-tunnel.yaml",
			Unit:    "qubes-claw-tunnel.service",
		},
		Setup: Setup{Enabled: true},
		Remote: Remote{
			Enabled: true, VM: "claw-admin", Create: true, Label: "black",
			Mode: "full", AgentMode: "restricted",
			Allow:        []string{"qvm-ls*", "qvm-check *", "qvm-start *", "qvm-shutdown *"},
			KeyDir:       "/etc/qubes/remote.d",
			DaemonConfig: "/etc/qubes/qvm-remote-dom0.yaml",
			Unit:         "qvm-remote-dom0.service",
		},
		StateFile: "/var/lib/qubes-claw/install.json",
	}
}

// Spec is the installer's configuration spec; --config names the answers
// file.
func Spec() config.Spec[Config] {
	return config.Spec[Config]{
		Program:    Program,
		EnvPrefix:  EnvPrefix,
		SystemFile: "/etc/qubes/qubes-claw-install.yaml",
		Defaults:   Defaults,
	}
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid answers")

func invalidf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// Validate checks the answers that need no machine; Check (in plan.go)
// checks the ones that need one (templates that exist).
func (c *Config) Validate() error {
	if err := c.Log.Validate(); err != nil {
		return err
	}
	a := c.Agent
	if err := qubes.ValidateVMName(a.Name); err != nil {
		return invalidf("agent.name: %v", err)
	}
	if !slices.Contains(Classes, a.Class) {
		return invalidf("agent.class %q: one of %s", a.Class, strings.Join(Classes, ", "))
	}
	if a.Template != "" {
		if err := qubes.ValidateVMName(a.Template); err != nil {
			return invalidf("agent.template: %v", err)
		}
	}
	if !slices.Contains(Labels, a.Label) {
		return invalidf("agent.label %q: one of %s", a.Label, strings.Join(Labels, ", "))
	}
	if a.NetVM != "" && a.NetVM != "none" {
		if err := qubes.ValidateVMName(a.NetVM); err != nil {
			return invalidf("agent.netvm: %v", err)
		}
	}
	if a.Memory <= 0 || a.VCPUs <= 0 || a.MaxMem < 0 || (a.MaxMem > 0 && a.MaxMem < a.Memory) {
		return invalidf("agent memory %d, maxmem %d, vcpus %d: memory and vcpus must be positive, maxmem 0 or at least memory", a.Memory, a.MaxMem, a.VCPUs)
	}
	for _, t := range []string{a.Tag, c.Clients.Tag} {
		if err := qubes.ValidateTag(t); err != nil {
			return invalidf("tag: %v", err)
		}
	}
	if a.Tag == c.Clients.Tag {
		return invalidf("agent.tag and clients.tag are both %q", a.Tag)
	}
	for _, s := range a.Services {
		if s == "" || len(s) > 48 || strings.ContainsAny(s, "/ \t\n") || s == "." || s == ".." {
			return invalidf("agent.services: bad service flag %q", s)
		}
	}
	for _, vm := range c.Clients.VMs {
		if err := qubes.ValidateVMName(vm); err != nil {
			return invalidf("clients.vms: %v", err)
		}
		if vm == a.Name {
			return invalidf("clients.vms: the agent VM %s cannot be its own client", vm)
		}
	}
	if len(c.Ports) == 0 {
		return invalidf("ports: at least one port")
	}
	seen := map[int]bool{}
	for _, p := range c.Ports {
		if p < 1 || p > 65535 {
			return invalidf("ports: %d is not a TCP port", p)
		}
		if seen[p] {
			return invalidf("ports: %d listed twice", p)
		}
		seen[p] = true
	}
	if err := c.Tunnel.validate(len(c.Ports)); err != nil {
		return err
	}
	if err := c.Setup.validate(); err != nil {
		return err
	}
	if err := ValidatePolicyFile(string(c.Policy.File)); err != nil {
		return invalidf("policy.file: %v", err)
	}
	if err := qubes.ValidateService(c.Policy.Service); err != nil {
		return invalidf("policy.service: %v", err)
	}
	return c.Remote.validate(a.Name)
}

func (r *Remote) validate(agent string) error {
	if !r.Enabled {
		return nil
	}
	if err := qubes.ValidateVMName(r.VM); err != nil {
		return invalidf("remote.vm: %v", err)
	}
	if r.VM == agent && !r.AuthorizeAgent {
		// The worst case: a VM that reaches the internet and holds dom0.
		return invalidf("remote.vm is the agent VM %s: that needs the explicit remote.authorize_agent: true", agent)
	}
	if r.AuthorizeAgent && r.VM != agent {
		return invalidf("remote.authorize_agent is set but remote.vm is %s, not the agent VM %s", r.VM, agent)
	}
	for _, m := range []string{r.Mode, r.AgentMode} {
		if m != "full" && m != "restricted" {
			return invalidf("remote mode %q: full or restricted", m)
		}
	}
	if r.EffectiveMode() == "restricted" && len(r.Allow) == 0 {
		return invalidf("remote: restricted mode needs an allow list")
	}
	if !slices.Contains(Labels, r.Label) {
		return invalidf("remote.label %q: one of %s", r.Label, strings.Join(Labels, ", "))
	}
	if r.Template != "" {
		if err := qubes.ValidateVMName(r.Template); err != nil {
			return invalidf("remote.template: %v", err)
		}
	}
	if r.PersistentEnable != "" && r.PersistentEnable != Accept {
		return invalidf("remote.persistent_enable %q: the only accepted value is %q (or empty)", r.PersistentEnable, Accept)
	}
	if err := validateUnit(r.Unit); err != nil {
		return invalidf("remote.unit: %v", err)
	}
	return nil
}

// EffectiveMode is the mode the authorized VM gets.
func (r *Remote) EffectiveMode() string {
	if r.AuthorizeAgent {
		return r.AgentMode
	}
	return r.Mode
}

func validateUnit(u string) error {
	if !strings.HasSuffix(u, ".service") || strings.HasPrefix(u, "-") || strings.ContainsAny(u, "/ \t\n") {
		return fmt.Errorf("%q is not a service unit name", u)
	}
	return nil
}

func (t *Tunnel) validate(ports int) error {
	if !t.Enabled {
		return nil
	}
	if len(t.Listen) != 0 && len(t.Listen) != ports {
		return invalidf("tunnel.listen: %d addresses for %d ports (one per port, or none)", len(t.Listen), ports)
	}
	for _, l := range t.Listen {
		// Loopback and shape are checked when the tunnel config is test-loaded.
		if strings.ContainsAny(l, " \t\n\"'") {
			return invalidf("tunnel.listen: %q is not HOST:PORT", l)
		}
	}
	if err := validateUnit(t.Unit); err != nil {
		return invalidf("tunnel.unit: %v", err)
	}
	if t.Config == "" {
		return invalidf("tunnel.config: empty")
	}
	return nil
}

// Providers are the providers qubes-claw-proxy serves.
var Providers = []string{"openai", "anthropic", "ollama", "cursor"}

func (s *Setup) validate() error {
	if !s.Enabled {
		return nil
	}
	if s.Provider != "" && !slices.Contains(Providers, s.Provider) {
		return invalidf("setup.provider %q: one of %s (or empty)", s.Provider, strings.Join(Providers, ", "))
	}
	if s.BaseURL != "" {
		u, err := url.Parse(s.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(s.BaseURL, " \t\n'") {
			return invalidf("setup.base_url %q: an http(s) URL", s.BaseURL)
		}
	}
	return nil
}
