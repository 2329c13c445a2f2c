package client

import (
	"fmt"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/logging"
	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
)

// Program is the VM-side binary's name.
const Program = "qvm-remote"

// EnvPrefix prefixes its environment variables.
const EnvPrefix = "QVMR"

// Config is the configuration of qvm-remote in a VM.
type Config struct {
	Log logging.Config `mapstructure:"log"`

	QueueDir config.Path `mapstructure:"queue_dir" flag:"queue-dir" doc:"queue, key, history and audit.log (the qvm-remote 1.x layout)"`
	// VMName overrides the name the token binds; dom0 refuses a token bound
	// to any name but the one it knows the VM by.
	VMName string `mapstructure:"vm_name" doc:"this VM's name as dom0 knows it (empty: the name dom0 announced on its last channel, else qubesdb /name, else the host name)"`

	Timeout        time.Duration `mapstructure:"timeout" doc:"timeout asked of dom0 when -t is not given (0: dom0's default_timeout)"`
	PickupTimeout  time.Duration `mapstructure:"pickup_timeout" doc:"how long a queued command waits for dom0 to take it before the client gives up with \"daemon not responding\""`
	Slack          time.Duration `mapstructure:"slack" doc:"added to the timeout for the whole wait, so a dead channel cannot keep the client waiting forever"`
	MaxCommandSize int           `mapstructure:"max_command_size" doc:"largest command sent, in bytes (dom0 enforces its own limit)"`
	HistoryDays    int           `mapstructure:"history_days" doc:"days of history/ kept; older days are removed after each command (0: keep all)"`
}

// Defaults returns the built-in configuration.
func Defaults() Config {
	log := logging.Defaults()
	log.Level = "warn"
	return Config{
		Log:            log,
		QueueDir:       "~/.qvm-remote",
		PickupTimeout:  30 * time.Second,
		Slack:          30 * time.Second,
		MaxCommandSize: 1 << 20,
		HistoryDays:    30,
	}
}

// Spec is the client's configuration spec.
func Spec() config.Spec[Config] {
	return config.Spec[Config]{
		Program:    Program,
		EnvPrefix:  EnvPrefix,
		SystemFile: "/etc/qubes/qvm-remote.yaml",
		UserFile:   "~/.config/qvm-remote/qvm-remote.yaml",
		Defaults:   Defaults,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if err := c.Log.Validate(); err != nil {
		return err
	}
	if c.QueueDir == "" {
		return fmt.Errorf("queue_dir: empty")
	}
	if c.VMName != "" && !proto.ValidVMName(c.VMName) {
		return fmt.Errorf("vm_name: invalid VM name %q", c.VMName)
	}
	if c.Timeout < 0 || c.Timeout > time.Duration(1<<32-1)*time.Second {
		return fmt.Errorf("timeout: out of range")
	}
	if c.PickupTimeout <= 0 || c.Slack <= 0 {
		return fmt.Errorf("pickup_timeout, slack: must be positive")
	}
	if c.MaxCommandSize < 1 || c.MaxCommandSize > proto.MaxBody {
		return fmt.Errorf("max_command_size: must be 1..%d", proto.MaxBody)
	}
	if c.HistoryDays < 0 {
		return fmt.Errorf("history_days: negative")
	}
	return nil
}
