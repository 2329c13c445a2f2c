package daemon

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/logging"
	"github.com/qubes-claw/qubes-claw/pkg/remote/executor"
	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
)

// Program is the daemon's binary name.
const Program = "qvm-remote-dom0"

// EnvPrefix prefixes its environment variables.
const EnvPrefix = "QVMRD"

// Config is the daemon's configuration.
type Config struct {
	Log logging.Config `mapstructure:"log"`

	VMs        []VM        `mapstructure:"vms" doc:"VMs served, each with its own policy; VMs named only in legacy_conf get the defaults"`
	KeyDir     config.Path `mapstructure:"key_dir" flag:"key-dir" doc:"per-VM keys, VM.key (the qvm-remote 1.x directory)"`
	LegacyConf config.Path `mapstructure:"legacy_conf" doc:"qvm-remote 1.x config whose QVM_REMOTE_VMS adds VMs (empty: none)"`
	StateDir   config.Path `mapstructure:"state_dir" doc:"replay cache and at-most-once journal"`
	RuntimeDir config.Path `mapstructure:"runtime_dir" doc:"scripts of running commands (created 0700)"`
	QrexecDir  config.Path `mapstructure:"qrexec_dir" doc:"where qrexec-daemon creates qrexec.VM when a VM starts; watched so a started VM is served at once (empty: rely on reopen backoff)"`
	// VMCommand is what dom0 runs in each VM to serve the channel.
	VMCommand string `mapstructure:"vm_command" doc:"command run in each VM (qvm-run --pass-io --no-autostart --no-gui) to serve the channel"`

	MaxCommandSize int           `mapstructure:"max_command_size" doc:"largest command accepted, in bytes"`
	TimeWindow     time.Duration `mapstructure:"time_window" doc:"tokens whose client timestamp is further than this from dom0's clock are refused"`
	DefaultTimeout time.Duration `mapstructure:"default_timeout" doc:"timeout of a command that asks for none"`
	MaxTimeout     time.Duration `mapstructure:"max_timeout" doc:"longest timeout a VM may ask for (per-VM max_timeout overrides)"`
	KillGrace      time.Duration `mapstructure:"kill_grace" doc:"time between TERM and KILL when a command times out"`
	MaxStdout      int64         `mapstructure:"max_stdout" doc:"stdout passed on per command, in bytes; the rest is replaced by a truncation marker"`
	MaxStderr      int64         `mapstructure:"max_stderr" doc:"stderr passed on per command, in bytes"`

	MaxConcurrent int `mapstructure:"max_concurrent" doc:"commands running at once, all VMs together"`
	MaxPerVM      int `mapstructure:"max_per_vm" doc:"commands running at once per VM"`
	MaxQueued     int `mapstructure:"max_queued" doc:"commands waiting per VM; beyond it the client gets busy"`

	ReopenMin time.Duration `mapstructure:"reopen_min" doc:"first delay before re-opening a VM's channel"`
	ReopenMax time.Duration `mapstructure:"reopen_max" doc:"longest delay between attempts while the channel fails for another reason than a halted VM (and for halted VMs when VM starts are not watched)"`
	// HaltedRecheck is the safety re-check of a halted VM while starts are
	// watched. The qrexec socket watch is what finds a started VM; this
	// check only covers a start the watch missed without reporting it
	// (a watch that errors or loses its directory wakes every VM, or falls
	// back to the reopen backoff, by itself). Two minutes keeps a halted VM
	// at one qvm-check per two minutes (the goal is at most one per minute,
	// and a 60 s period would count two in a minute-and-a-bit window at an
	// unlucky phase), while a missed start still gets served well inside
	// the client's default 300 s timeout.
	HaltedRecheck time.Duration `mapstructure:"halted_recheck" doc:"while VM starts are watched (qrexec_dir), a halted VM is checked again only after this long, with no ramp: its start wakes the daemon at once"`

	Exec ExecConfig `mapstructure:"exec"`
}

// ExecConfig is the environment commands run in.
type ExecConfig struct {
	Bash    string      `mapstructure:"bash" doc:"shell that runs commands"`
	Path    string      `mapstructure:"path" doc:"PATH of every command"`
	Lang    string      `mapstructure:"lang" doc:"LANG of every command"`
	Home    config.Path `mapstructure:"home" doc:"HOME of every command (empty: the home of the user it runs as)"`
	PassEnv []string    `mapstructure:"pass_env" doc:"variables passed from the daemon's environment (the simulator's; keep empty on Qubes)"`
}

// VM is the policy of one VM.
type VM struct {
	Name string `mapstructure:"name" doc:"VM name"`
	// Mode is full (any command) or restricted (Allow only).
	Mode       string        `mapstructure:"mode" doc:"full: any command; restricted: only commands matching allow"`
	Allow      []string      `mapstructure:"allow" doc:"restricted mode: patterns (* and ?) a whole one-line command must match; shell syntax is never allowed"`
	MaxTimeout time.Duration `mapstructure:"max_timeout" doc:"longest timeout (0: the global max_timeout)"`
	User       string        `mapstructure:"user" doc:"run this VM's commands as this dom0 user (empty: the daemon's)"`
}

// Defaults returns the built-in configuration.
func Defaults() Config {
	return Config{
		Log:            logging.Defaults(),
		KeyDir:         "/etc/qubes/remote.d",
		LegacyConf:     "/etc/qubes/remote.conf",
		StateDir:       "/var/lib/qvm-remote",
		RuntimeDir:     "/run/qvm-remote",
		QrexecDir:      "/run/qubes",
		VMCommand:      "qvm-remote serve",
		MaxCommandSize: 1 << 20,
		TimeWindow:     300 * time.Second,
		DefaultTimeout: 300 * time.Second,
		MaxTimeout:     time.Hour,
		KillGrace:      5 * time.Second,
		MaxStdout:      10 << 20,
		MaxStderr:      10 << 20,
		MaxConcurrent:  16,
		MaxPerVM:       4,
		MaxQueued:      64,
		ReopenMin:      time.Second,
		ReopenMax:      time.Minute,
		HaltedRecheck:  2 * time.Minute,
		Exec: ExecConfig{
			Bash: "/bin/bash",
			Path: executor.DefaultPath,
			Lang: "C.UTF-8",
		},
	}
}

// Spec is the daemon's configuration spec.
func Spec() config.Spec[Config] {
	return config.Spec[Config]{
		Program:    Program,
		EnvPrefix:  EnvPrefix,
		SystemFile: "/etc/qubes/qvm-remote-dom0.yaml",
		Defaults:   Defaults,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if err := c.Log.Validate(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, vm := range c.VMs {
		if !proto.ValidVMName(vm.Name) {
			return fmt.Errorf("vms[%d].name: invalid VM name %q", i, vm.Name)
		}
		if seen[vm.Name] {
			return fmt.Errorf("vms[%d]: VM %s listed twice", i, vm.Name)
		}
		seen[vm.Name] = true
		switch vm.Mode {
		case "", "full":
		case "restricted":
			if len(vm.Allow) == 0 {
				return fmt.Errorf("vms[%d] (%s): restricted mode needs an allow list", i, vm.Name)
			}
		default:
			return fmt.Errorf("vms[%d].mode: %q is not full or restricted", i, vm.Mode)
		}
		if vm.MaxTimeout < 0 {
			return fmt.Errorf("vms[%d].max_timeout: negative", i)
		}
	}
	if c.MaxCommandSize < 1 || c.MaxCommandSize > proto.MaxBody {
		return fmt.Errorf("max_command_size: must be 1..%d", proto.MaxBody)
	}
	for name, v := range map[string]int{"max_concurrent": c.MaxConcurrent, "max_per_vm": c.MaxPerVM, "max_queued": c.MaxQueued} {
		if v < 1 {
			return fmt.Errorf("%s: must be at least 1", name)
		}
	}
	for name, d := range map[string]time.Duration{
		"time_window": c.TimeWindow, "default_timeout": c.DefaultTimeout, "max_timeout": c.MaxTimeout,
		"kill_grace": c.KillGrace, "reopen_min": c.ReopenMin, "reopen_max": c.ReopenMax,
		"halted_recheck": c.HaltedRecheck,
	} {
		if d <= 0 {
			return fmt.Errorf("%s: must be positive", name)
		}
	}
	if c.MaxStdout < 0 || c.MaxStderr < 0 {
		return fmt.Errorf("max_stdout, max_stderr: negative")
	}
	if !filepath.IsAbs(c.Exec.Bash) {
		return fmt.Errorf("exec.bash: %q is not an absolute path", c.Exec.Bash)
	}
	if c.VMCommand == "" {
		return fmt.Errorf("vm_command: empty")
	}
	return nil
}
