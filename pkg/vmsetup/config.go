package vmsetup

import "github.com/qubes-claw/qubes-claw/pkg/config"

// Config is the `setup` section of the proxy's configuration.
type Config struct {
	User           string      `mapstructure:"user" doc:"the VM user whose systemd user manager runs the proxy and the gateway"`
	Home           config.Path `mapstructure:"home" doc:"that user's home directory; empty: /home/USER"`
	Binary         string      `mapstructure:"binary" doc:"the proxy's path inside the VM, as the units run it"`
	Gateway        string      `mapstructure:"gateway" doc:"the OpenClaw CLI the gateway unit runs; a bare name is searched in systemd's fixed PATH (/usr/local/bin, /usr/bin, ...)"`
	GatewayPort    int         `mapstructure:"gateway_port" doc:"port of the OpenClaw gateway on 127.0.0.1"`
	GatewayHealth  string      `mapstructure:"gateway_health" doc:"URL the gateway's watchdog probes; any HTTP answer below 500 counts as alive"`
	RCLocalDir     config.Path `mapstructure:"rc_local_dir" doc:"per-VM boot hooks run as root at each boot (Qubes /rw/config/rc.local.d); in an AppVM the linger hook goes here"`
	QubesRunDir    config.Path `mapstructure:"qubes_run_dir" doc:"where qubes-sysinit records the VM's persistence class (persistent-full, persistent-rw-only, persistent-none)"`
	ServiceFlagDir config.Path `mapstructure:"service_flag_dir" doc:"where qubes-sysinit puts the Qubes service flags at boot; status reads them here (the units name the fixed Qubes path)"`
}

// Defaults returns the built-in setup configuration.
func Defaults() Config {
	return Config{
		User:           "user",
		Binary:         "/usr/bin/qubes-claw-proxy",
		Gateway:        "openclaw",
		GatewayPort:    18789,
		GatewayHealth:  "http://127.0.0.1:18789/",
		RCLocalDir:     "/rw/config/rc.local.d",
		QubesRunDir:    "/run/qubes",
		ServiceFlagDir: ServiceFlagDir,
	}
}

// HomeDir returns the user's home: Home, else /home/USER resolved like any
// configured path.
func (c Config) HomeDir() string {
	if c.Home != "" {
		return string(c.Home)
	}
	return string(config.ResolveEnv(config.Path("/home/" + c.User)))
}
