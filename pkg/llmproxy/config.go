package llmproxy

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/anthropic"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/chat"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/cursor"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/ollama"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/openai"
	"github.com/qubes-claw/qubes-claw/pkg/logging"
	"github.com/qubes-claw/qubes-claw/pkg/vmsetup"
)

// Program is the proxy's binary name.
const Program = "qubes-claw-proxy"

// DefaultListen is where OpenClaw (and the dom0 tunnel) expect the proxy.
const DefaultListen = "127.0.0.1:32125"

// Config is the proxy's configuration.
type Config struct {
	Log logging.Config `mapstructure:"log"`

	Listen           string   `mapstructure:"listen" flag:"listen" doc:"address to listen on; must be a loopback address unless allow_non_loopback is set"`
	AllowNonLoopback bool     `mapstructure:"allow_non_loopback" doc:"permit a non-loopback listen address (the proxy holds API keys: anything that can reach it spends them)"`
	Provider         string   `mapstructure:"provider" flag:"provider" doc:"provider serving requests: openai, anthropic, ollama, cursor"`
	Fallback         []string `mapstructure:"fallback" doc:"providers tried in order when the provider fails before the first byte was sent"`
	// Token is the bearer token clients must send.
	Token        config.Secret `mapstructure:"token" doc:"bearer token clients must send (Authorization: Bearer TOKEN); empty disables client auth"`
	MaxBodyBytes int64         `mapstructure:"max_body_bytes" doc:"largest request body accepted, in bytes"`
	UsageLog     config.Path   `mapstructure:"usage_log" doc:"append one JSON line per request (provider, model, status, latency, tokens) to this file; empty: log lines only"`

	Timeouts Timeouts `mapstructure:"timeouts"`

	OpenAI    openai.Config    `mapstructure:"openai"`
	Anthropic anthropic.Config `mapstructure:"anthropic"`
	Ollama    ollama.Config    `mapstructure:"ollama"`
	Cursor    cursor.Config    `mapstructure:"cursor"`

	// Setup is read by `qubes-claw-proxy setup` and `status`, not by serve.
	Setup vmsetup.Config `mapstructure:"setup"`
}

// Timeouts bound each request.
type Timeouts struct {
	Total     time.Duration `mapstructure:"total" doc:"longest a request may take, streaming included"`
	Idle      time.Duration `mapstructure:"idle" doc:"longest the upstream may stay silent before the request is aborted"`
	Heartbeat time.Duration `mapstructure:"heartbeat" doc:"a stream silent this long gets a keep-alive comment; before the first byte, the response is committed then (which ends fallback)"`
	ReadBody  time.Duration `mapstructure:"read_body" doc:"longest a client may take to send its request"`
	Shutdown  time.Duration `mapstructure:"shutdown" doc:"how long running requests may finish on shutdown"`
	Check     time.Duration `mapstructure:"check" doc:"bound of the deep health check (/health?deep=1)"`
}

// Defaults returns the built-in configuration.
func Defaults() Config {
	return Config{
		Log:          logging.Defaults(),
		Listen:       DefaultListen,
		Provider:     "openai",
		MaxBodyBytes: 32 << 20,
		Timeouts: Timeouts{
			Total:     15 * time.Minute,
			Idle:      3 * time.Minute,
			Heartbeat: 15 * time.Second,
			ReadBody:  time.Minute,
			Shutdown:  10 * time.Second,
			Check:     10 * time.Second,
		},
		OpenAI:    openai.Defaults(),
		Anthropic: anthropic.Defaults(),
		Ollama:    ollama.Defaults(),
		Cursor:    cursor.Defaults(),
		Setup:     vmsetup.Defaults(),
	}
}

// Spec is the proxy's configuration spec: /etc/qubes-claw/qubes-claw-proxy.yaml,
// then the user's file (the one VM setup writes: in an AppVM only /home
// persists), then QCPROXY_* variables and flags.
func Spec() config.Spec[Config] {
	return config.Spec[Config]{
		Program:    Program,
		EnvPrefix:  EnvPrefix,
		SystemFile: "/etc/qubes-claw/qubes-claw-proxy.yaml",
		UserFile:   "~/.config/qubes-claw/qubes-claw-proxy.yaml",
		Defaults:   Defaults,
	}
}

// EnvPrefix prefixes the proxy's own environment variables.
const EnvPrefix = "QCPROXY"

// Providers lists the provider names.
var Providers = []string{"openai", "anthropic", "ollama", "cursor"}

// Validate checks what can be checked without the environment's API keys
// (ApplyEnv and New check those).
func (c *Config) Validate() error {
	if err := c.Log.Validate(); err != nil {
		return err
	}
	if err := checkListen(c.Listen, c.AllowNonLoopback); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, name := range append([]string{c.Provider}, c.Fallback...) {
		key := "provider"
		if i > 0 {
			key = fmt.Sprintf("fallback[%d]", i-1)
		}
		if !known(name) {
			return fmt.Errorf("%s: unknown provider %q (choose one of %s)", key, name, strings.Join(Providers, ", "))
		}
		if seen[name] {
			return fmt.Errorf("%s: provider %q is listed twice", key, name)
		}
		seen[name] = true
	}
	for name, d := range map[string]time.Duration{
		"timeouts.total": c.Timeouts.Total, "timeouts.idle": c.Timeouts.Idle, "timeouts.heartbeat": c.Timeouts.Heartbeat,
		"timeouts.read_body": c.Timeouts.ReadBody, "timeouts.shutdown": c.Timeouts.Shutdown, "timeouts.check": c.Timeouts.Check,
	} {
		if d <= 0 {
			return fmt.Errorf("%s must be positive", name)
		}
	}
	if c.MaxBodyBytes <= 0 {
		return fmt.Errorf("max_body_bytes must be positive")
	}
	if c.Setup.User == "" || strings.ContainsAny(c.Setup.User, "/ ") {
		return fmt.Errorf("setup.user: %q is not a user name", c.Setup.User)
	}
	if c.Setup.GatewayPort <= 0 || c.Setup.GatewayPort > 65535 {
		return fmt.Errorf("setup.gateway_port: %d is not a port", c.Setup.GatewayPort)
	}
	return c.Cursor.Validate()
}

func known(name string) bool {
	for _, p := range Providers {
		if p == name {
			return true
		}
	}
	return false
}

// checkListen refuses a non-loopback address unless allowed: every provider
// key is spent on behalf of whoever can connect.
func checkListen(addr string, allowAny bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen: %q is not host:port: %w", addr, err)
	}
	if port == "" {
		return fmt.Errorf("listen: %q has no port", addr)
	}
	if allowAny {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	ap, err := config.ParseListen(addr)
	if err != nil || !ap.Addr().IsLoopback() {
		return fmt.Errorf("listen: %q is not a loopback address; set allow_non_loopback: true to serve other hosts", addr)
	}
	return nil
}

// ApplyEnv applies the conventional key variables (OPENAI_API_KEY, ...):
// they override the files, while the proxy's own QCPROXY_* variable, when
// set, still wins over them.
func (c *Config) ApplyEnv(getenv func(string) string) {
	for _, k := range keyVars(c) {
		if getenv(EnvPrefix+"_"+k.own) != "" {
			continue
		}
		if v := getenv(k.std); v != "" {
			*k.dst = config.Secret(v)
		}
	}
}

type keyVar struct {
	std, own string
	dst      *config.Secret
}

// keyVars lists each provider's key with its conventional variable.
func keyVars(c *Config) []keyVar {
	return []keyVar{
		{std: "OPENAI_API_KEY", own: "OPENAI_API_KEY", dst: &c.OpenAI.APIKey},
		{std: "ANTHROPIC_API_KEY", own: "ANTHROPIC_API_KEY", dst: &c.Anthropic.APIKey},
		{std: "CURSOR_API_KEY", own: "CURSOR_API_KEY", dst: &c.Cursor.APIKey},
	}
}

// ModelsOf returns the configured models of a provider.
func (c *Config) ModelsOf(provider string) []chat.Model {
	switch provider {
	case "openai":
		return c.OpenAI.Models
	case "anthropic":
		return c.Anthropic.Models
	case "ollama":
		return c.Ollama.Models
	case "cursor":
		return c.Cursor.Models
	}
	return nil
}
