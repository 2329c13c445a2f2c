package vmsetup

import (
	"fmt"
	"strings"
)

// The Qubes service flags that gate the units: `qvm-service --enable VM
// qubes-claw-proxy` (and qubes-claw-gateway) in dom0, effective at the
// VM's next boot (qubes.md §3.7).
const (
	ProxyService   = "qubes-claw-proxy"
	GatewayService = "qubes-claw-gateway"
	// ServiceFlagDir is where qubes-sysinit.sh touches the flags; the units
	// name this fixed path, as Qubes' own units do.
	ServiceFlagDir = "/run/qubes-service"
)

// Unit names; the gateway's is ours, not OpenClaw's own
// `openclaw gateway install` unit, so the two never fight over a name.
const (
	ProxyUnit   = ProxyService + ".service"
	GatewayUnit = GatewayService + ".service"
)

// Units lists the unit names in start order.
var Units = []string{ProxyUnit, GatewayUnit}

// UnitOptions are what varies between installations.
type UnitOptions struct {
	// Binary is the proxy's path inside the VM.
	Binary string
	// Gateway is the OpenClaw CLI.
	Gateway string
	// GatewayPort and GatewayHealth locate the gateway.
	GatewayPort   int
	GatewayHealth string
}

// UnitOptionsOf returns the unit options of a setup configuration.
func UnitOptionsOf(c Config) UnitOptions {
	return UnitOptions{Binary: c.Binary, Gateway: c.Gateway, GatewayPort: c.GatewayPort, GatewayHealth: c.GatewayHealth}
}

// ProxyUnitText renders the proxy's user unit. Exit status 78 (bad config)
// is not restarted: a restart cannot fix a missing key.
func ProxyUnitText(o UnitOptions) []byte {
	return []byte(fmt.Sprintf(`# qubes-claw-proxy as a systemd user unit, rendered by pkg/vmsetup: "qubes-claw-proxy
# setup" writes it to ~/.config/systemd/user; packages ship the default rendering.
[Unit]
Description=qubes-claw-proxy: OpenAI-compatible endpoint on 127.0.0.1:32125 for OpenClaw
# Runs only with the Qubes service flag on: qvm-service --enable VM %[1]s.
# The flags exist before sysinit.target, so before any user manager starts.
ConditionPathExists=%[2]s/%[1]s

[Service]
Type=notify
ExecStart=%[3]s serve
# serve pings the watchdog only while its own /health answers.
WatchdogSec=60
Restart=on-failure
RestartSec=2
RestartPreventExitStatus=78
TimeoutStopSec=20

[Install]
WantedBy=default.target
`, ProxyService, ServiceFlagDir, quoteExec(o.Binary)))
}

// GatewayUnitText renders the OpenClaw gateway's user unit: the gateway runs
// under `qubes-claw-proxy watch-gateway`, which pings systemd's watchdog
// only while the gateway answers HTTP, so a hung gateway is restarted by
// systemd itself.
func GatewayUnitText(o UnitOptions) []byte {
	return []byte(fmt.Sprintf(`# The OpenClaw gateway as a systemd user unit, rendered by pkg/vmsetup: "qubes-claw-proxy
# setup" writes it to ~/.config/systemd/user; packages ship the default rendering.
[Unit]
Description=OpenClaw gateway on 127.0.0.1:%[4]d, using qubes-claw-proxy
# Runs only with the Qubes service flag on: qvm-service --enable VM %[1]s.
ConditionPathExists=%[2]s/%[1]s
# Its only model provider is the proxy; it still starts without it.
Wants=%[5]s
After=%[5]s

[Service]
Type=notify
NotifyAccess=main
ExecStart=%[3]s watch-gateway --health %[6]s -- %[7]s gateway --port %[4]d --bind loopback
WatchdogSec=90
Restart=on-failure
RestartSec=5
TimeoutStopSec=20

[Install]
WantedBy=default.target
`, GatewayService, ServiceFlagDir, quoteExec(o.Binary), o.GatewayPort, ProxyUnit, quoteExec(o.GatewayHealth), quoteExec(o.Gateway)))
}

// quoteExec quotes one word of an Exec= line when systemd would split it;
// % and $ are doubled so they stay literal.
func quoteExec(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "%", "%%"), "$", "$$")
	if s != "" && !strings.ContainsAny(s, " \t\"'\\;") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
