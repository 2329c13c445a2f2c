// Package connect is the VM side of a qubes-claw tunnel: the qrexec service
// handler behind our own service name (qubes-claw.Connect, never core's
// qubes.ConnectTCP). It reads the port from the call's argument, accepts only
// the ports of its allow-list, and connects to 127.0.0.1:PORT (IPv4, as
// qubes.ConnectTCP does) once the caller's first byte arrives, so a caller may
// open channels ahead of time without tying up connections to the server.
// Bytes are copied both ways with half-close.
package connect

import (
	"fmt"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/logging"
)

// Program is the handler's binary name.
const Program = "qubes-claw-connect"

// EnvPrefix prefixes its environment variables.
const EnvPrefix = "QCCONNECT"

// Service is the qrexec service name the handler is installed under.
const Service = "qubes-claw.Connect"

// Default ports: the LLM proxy and the OpenClaw gateway.
const (
	PortProxy   = 32125
	PortGateway = 18789
)

// Config is the handler's configuration.
type Config struct {
	Log logging.Config `mapstructure:"log"`

	Ports          []int         `mapstructure:"ports" doc:"the only ports callers may reach on 127.0.0.1 (the call's argument)"`
	ConnectTimeout time.Duration `mapstructure:"connect_timeout" doc:"longest the connection to 127.0.0.1:PORT may take"`
	// FirstByteTimeout bounds the wait for the caller's first byte; 0
	// keeps pre-opened channels waiting as long as their caller holds them.
	FirstByteTimeout time.Duration `mapstructure:"first_byte_timeout" doc:"give up when the caller sends nothing for this long before the first byte (0: wait as long as the caller keeps the channel open, as pre-opened tunnel channels do)"`
}

// Defaults returns the built-in configuration.
func Defaults() Config {
	log := logging.Defaults()
	log.Level = "warn"
	return Config{
		Log:            log,
		Ports:          []int{PortProxy, PortGateway},
		ConnectTimeout: 10 * time.Second,
	}
}

// Spec is the handler's configuration spec: the template-wide file, then the
// user's file (in an AppVM only /home persists).
func Spec() config.Spec[Config] {
	return config.Spec[Config]{
		Program:    Program,
		EnvPrefix:  EnvPrefix,
		SystemFile: "/etc/qubes-claw/qubes-claw-connect.yaml",
		UserFile:   "~/.config/qubes-claw/qubes-claw-connect.yaml",
		Defaults:   Defaults,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if err := c.Log.Validate(); err != nil {
		return err
	}
	for _, p := range c.Ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("ports: %d is not a TCP port", p)
		}
	}
	if c.ConnectTimeout <= 0 {
		return fmt.Errorf("connect_timeout: must be positive")
	}
	if c.FirstByteTimeout < 0 {
		return fmt.Errorf("first_byte_timeout: must not be negative")
	}
	return nil
}
