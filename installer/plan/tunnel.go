package plan

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/policy"
	"github.com/qubes-claw/qubes-claw/pkg/tunnel"
)

// configHeader heads the files the plan writes whole. The Salt formula
// writes the same text: both front ends leave identical files.
const configHeader = `# Written from the qubes-claw deployment answers (qubes-claw-install, or the
# qubes-claw Salt formula); change the answers and apply them again instead of
# editing this file.
`

// RenderPolicy renders our policy file with qubes-claw-tunnel's renderer
// (pkg/policy): client-tagged VMs may call the connect service with +PORT
// for the planned ports only, on the server-tagged VM; every other call of
// the service is denied. `qubes-claw-tunnel policy render` prints the same
// file from the tunnel config the plan writes.
func RenderPolicy(c *Config) ([]byte, error) {
	return policy.Render(policy.RenderConfig{
		Service: c.Policy.Service, ClientTag: c.Clients.Tag, ServerTag: c.Agent.Tag, Ports: c.Ports,
	})
}

// TunnelNames name the tunnels by the position of their port in ports.
func TunnelName(i, port int) string {
	switch i {
	case 0:
		return "llm-proxy"
	case 1:
		return "gateway"
	}
	return "port-" + strconv.Itoa(port)
}

// TunnelListen is the dom0 address of the i-th port.
func (c *Config) TunnelListen(i int) string {
	if len(c.Tunnel.Listen) > 0 {
		return c.Tunnel.Listen[i]
	}
	return "127.0.0.1:" + strconv.Itoa(c.Ports[i])
}

// RenderTunnelConfig renders qubes-claw-tunnel's config: a tunnel per port
// to the agent VM, and the policy section matching our policy file, so the
// daemon's `policy render` and `policy explain` see what the plan wrote.
// Written as text, not encoded, so the Salt formula can write it byte for
// byte; every string is quoted (a VM named "yes" stays a string).
func RenderTunnelConfig(c *Config) []byte {
	var b strings.Builder
	b.WriteString(configHeader)
	b.WriteString("tunnels:\n")
	for i, p := range c.Ports {
		fmt.Fprintf(&b, "  - name: %q\n    listen: %q\n    vm: %q\n    port: %d\n    service: %q\n",
			TunnelName(i, p), c.TunnelListen(i), c.Agent.Name, p, c.Policy.Service)
	}
	ports := make([]string, len(c.Ports))
	for i, p := range c.Ports {
		ports[i] = strconv.Itoa(p)
	}
	fmt.Fprintf(&b, "policy:\n  file: %q\n  client_tag: %q\n  server_tag: %q\n  ports: [%s]\n",
		domainPath(c.Policy.File), c.Clients.Tag, c.Agent.Tag, strings.Join(ports, ", "))
	return []byte(b.String())
}

// domainPath is p as dom0 names it: configuration paths are relocated
// under $QUBES_CLAW_ROOT when it is set (the simulator), and a file written
// for the daemon must name the path the daemon resolves again itself.
func domainPath(p config.Path) string {
	root := os.Getenv(config.RootEnv)
	if root == "" {
		return string(p)
	}
	if rel, err := filepath.Rel(filepath.Clean(root), string(p)); err == nil && !strings.HasPrefix(rel, "..") {
		return "/" + rel
	}
	return string(p)
}

// checkTunnelConfig loads data as qubes-claw-tunnel serve will (strict
// keys, Validate, at least one tunnel), from a temporary file next to path,
// so a file the daemon refuses is never installed.
func checkTunnelConfig(path string, data []byte) error {
	err := withCandidate(path, data, func(file string) error {
		spec := tunnel.Spec()
		spec.SystemFile, spec.UserFile = config.Path(file), ""
		cfg, _, err := spec.Load(nil)
		if err != nil {
			return err
		}
		return cfg.CheckTunnels()
	})
	if err != nil {
		return fmt.Errorf("%w: the qubes-claw-tunnel config would be refused: %v", ErrInvalid, err)
	}
	return nil
}

// --- units ----------------------------------------------------------------

// UnitItem keeps a dom0 unit enabled and running, restarted when a file it
// reads changed in this run.
type UnitItem struct {
	Unit string
	// Reads are the files the unit reads at start.
	Reads []*FileItem
}

func (u *UnitItem) Title() string { return "enable and start " + u.Unit }

func (u *UnitItem) state(ctx context.Context, env *Env) (enabled, active, stale bool, err error) {
	if enabled, err = env.Q.UnitEnabled(ctx, u.Unit); err != nil {
		return
	}
	_, aerr := env.Q.Systemctl(ctx, "is-active", "--quiet", u.Unit)
	active = aerr == nil
	for _, f := range u.Reads {
		stale = stale || f.written
	}
	return
}

func (u *UnitItem) Diff(ctx context.Context, env *Env) ([]string, error) {
	enabled, active, stale, err := u.state(ctx, env)
	var out []string
	switch {
	case !enabled:
		out = append(out, "+ systemctl enable --now "+u.Unit)
	case !active:
		out = append(out, "+ systemctl start "+u.Unit)
	case stale:
		out = append(out, "~ systemctl restart "+u.Unit+" (its config changed)")
	}
	return out, err
}

func (u *UnitItem) Apply(ctx context.Context, env *Env) error {
	enabled, active, _, err := u.state(ctx, env)
	if err != nil {
		return err
	}
	if !enabled {
		env.Rec.noteUnit(u.Unit)
		// enable --now does not restart a running unit: restart after it.
		if _, err := env.Q.Systemctl(ctx, "enable", u.Unit); err != nil {
			return err
		}
	}
	verb := "restart"
	if !active {
		verb = "start"
	}
	_, err = env.Q.Systemctl(ctx, verb, u.Unit)
	return err
}
