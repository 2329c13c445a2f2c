package plan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/qubes-claw/qubes-claw/pkg/qubes"
)

// The VM side runs fixed commands through qvm-run: values from the answers
// that reach a command line are validated (names, ports, a URL without
// quotes) and quoted; the API key travels on stdin only.
//
// Paths inside the VM are prefixed with ${QUBES_CLAW_ROOT:-}: empty on
// Qubes, the domain's root in the simulator, where a VM shares the host's /.

// ConnectConfigPath is the handler's allow-list the plan writes, in the
// default user's home: it persists in every VM class.
const ConnectConfigPath = "~/.config/qubes-claw/qubes-claw-connect.yaml"

// RenderConnectConfig is qubes-claw-connect's user config: exactly the
// planned ports, the ones the policy and the dom0 tunnels use.
func RenderConnectConfig(c *Config) []byte {
	ports := make([]string, len(c.Ports))
	for i, p := range c.Ports {
		ports[i] = strconv.Itoa(p)
	}
	return []byte(configHeader + "ports: [" + strings.Join(ports, ", ") + "]\n")
}

// vmState is whether the VM exists and runs; the VM-side items read the
// VM only when it runs, so a dry run never starts one.
func vmState(ctx context.Context, env *Env, vm string) (exists, running bool, err error) {
	if _, err := env.Q.Prefs(ctx, vm); errors.Is(err, qubes.ErrNoSuchVM) {
		return false, false, nil
	} else if err != nil {
		return false, false, err
	}
	running, err = env.Q.IsRunning(ctx, vm)
	return true, running, err
}

// HandlerItem makes qrexec find the connect handler in the agent VM where
// it persists, and sets the handler's allow-list to the planned ports.
type HandlerItem struct {
	VM      string
	Service string
	Config  []byte
}

func (h *HandlerItem) Title() string { return "qrexec handler " + h.Service + " in " + h.VM }

// probe prints "handler PATH" for the service qrexec finds (the /usr/local
// copy first, as qrexec searches), else "binary" when qubes-claw-connect
// is installed. A symlink counts: its target is resolved inside the VM.
func (h *HandlerItem) probe() string {
	return `r="${QUBES_CLAW_ROOT:-}"; for d in /usr/local/etc/qubes-rpc /etc/qubes-rpc; do ` +
		`if [ -L "$r$d/` + h.Service + `" ] || [ -x "$r$d/` + h.Service + `" ]; then echo "handler $d/` + h.Service + `"; exit 0; fi; done; ` +
		`if [ -x "$r/usr/bin/qubes-claw-connect" ]; then echo binary; fi`
}

func (h *HandlerItem) read(ctx context.Context, env *Env) (probe string, conf []byte, err error) {
	opts := qubes.RunOptions{User: "root", PassIO: true, NoGUI: true}
	out, err := env.Q.Run(ctx, h.VM, h.probe(), opts)
	if err != nil {
		return "", nil, err
	}
	// A missing file reads as empty: the difference shows it.
	conf, err = env.Q.Run(ctx, h.VM, "cat "+ConnectConfigPath+" 2>/dev/null || true", qubes.RunOptions{PassIO: true, NoGUI: true})
	return strings.TrimSpace(string(out)), conf, err
}

func (h *HandlerItem) Diff(ctx context.Context, env *Env) ([]string, error) {
	exists, running, err := vmState(ctx, env, h.VM)
	if err != nil {
		return nil, err
	}
	if !exists || !running {
		return []string{fmt.Sprintf("+ check qrexec finds %s in %s (start it)", h.Service, h.VM),
			"+ " + ConnectConfigPath + ": " + strings.TrimSpace(lastLine(h.Config))}, nil
	}
	probe, conf, err := h.read(ctx, env)
	if err != nil {
		return nil, err
	}
	var out []string
	switch {
	case probe == "binary":
		out = append(out, "+ /usr/local/etc/qubes-rpc/"+h.Service+" -> /usr/bin/qubes-claw-connect")
	case !strings.HasPrefix(probe, "handler "):
		return nil, fmt.Errorf("%w: qubes-claw-connect is not installed in %s: install the qubes-claw-vm package in its template (or in it, for a StandaloneVM)", qubes.ErrNoService, h.VM)
	}
	if !bytes.Equal(conf, h.Config) {
		out = append(out, "~ "+ConnectConfigPath)
		out = append(out, lineDiff(string(conf), string(h.Config))...)
	}
	return out, nil
}

func lastLine(b []byte) string {
	s := strings.TrimRight(string(b), "\n")
	return s[strings.LastIndex(s, "\n")+1:]
}

func (h *HandlerItem) Apply(ctx context.Context, env *Env) error {
	probe, conf, err := h.read(ctx, env) // starts the VM if needed
	if err != nil {
		return err
	}
	switch {
	case probe == "binary":
		// /usr/local persists in an AppVM and shadows the template's path.
		link := `r="${QUBES_CLAW_ROOT:-}"; mkdir -p "$r/usr/local/etc/qubes-rpc" && ln -sfn /usr/bin/qubes-claw-connect "$r/usr/local/etc/qubes-rpc/` + h.Service + `"`
		if _, err := env.Q.Run(ctx, h.VM, link, qubes.RunOptions{User: "root", PassIO: true, NoGUI: true}); err != nil {
			return err
		}
	case !strings.HasPrefix(probe, "handler "):
		return fmt.Errorf("%w: qubes-claw-connect is not installed in %s: install the qubes-claw-vm package in its template (or in it, for a StandaloneVM)", qubes.ErrNoService, h.VM)
	}
	if bytes.Equal(conf, h.Config) {
		return nil
	}
	// Written as the default user (the handler's user), atomically.
	write := `d=~/.config/qubes-claw; mkdir -p "$d" && cat > "$d/.qubes-claw-connect.yaml.new" && mv -f "$d/.qubes-claw-connect.yaml.new" "$d/qubes-claw-connect.yaml"`
	_, err = env.Q.Run(ctx, h.VM, write, qubes.RunOptions{PassIO: true, NoGUI: true, Stdin: bytes.NewReader(h.Config)})
	return err
}

// SetupItem runs `qubes-claw-proxy setup` in the agent VM as root. Its
// --check mode is the diff, so a dry run and a second run change nothing.
type SetupItem struct {
	VM    string
	Setup Setup
	// Ports are the planned ports: the proxy listens on the first, the
	// gateway on the second.
	Ports []int
}

func (s *SetupItem) Title() string { return "qubes-claw-proxy setup in " + s.VM }

// command is the setup command line; the key, if any, comes on stdin.
func (s *SetupItem) command(check bool) string {
	var b strings.Builder
	if len(s.Ports) > 1 {
		fmt.Fprintf(&b, "QCPROXY_SETUP_GATEWAY_PORT=%d QCPROXY_SETUP_GATEWAY_HEALTH=http://127.0.0.1:%d/ ", s.Ports[1], s.Ports[1])
	}
	fmt.Fprintf(&b, "qubes-claw-proxy setup --listen 127.0.0.1:%d", s.Ports[0])
	if s.Setup.Provider != "" {
		b.WriteString(" --provider " + s.Setup.Provider)
	}
	if s.Setup.BaseURL != "" {
		b.WriteString(" --base-url '" + s.Setup.BaseURL + "'")
	}
	if s.Setup.APIKeyFile != "" {
		b.WriteString(" --api-key-stdin")
	}
	if check {
		b.WriteString(" --check")
	}
	return b.String()
}

func (s *SetupItem) run(ctx context.Context, env *Env, check bool) ([]byte, error) {
	opts := qubes.RunOptions{User: "root", PassIO: true, NoGUI: true}
	if s.Setup.APIKeyFile != "" {
		key, err := os.ReadFile(string(s.Setup.APIKeyFile))
		if err != nil {
			return nil, fmt.Errorf("setup.api_key_file: %w", err)
		}
		opts.Stdin = bytes.NewReader(append(bytes.TrimSpace(key), '\n'))
	}
	return env.Q.Run(ctx, s.VM, s.command(check), opts)
}

func (s *SetupItem) Diff(ctx context.Context, env *Env) ([]string, error) {
	exists, running, err := vmState(ctx, env, s.VM)
	if err != nil {
		return nil, err
	}
	if !exists || !running {
		return []string{fmt.Sprintf("+ start %s and run: %s", s.VM, s.command(false))}, nil
	}
	out, err := s.run(ctx, env, true)
	if err != nil {
		return nil, err
	}
	var d []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "would ") {
			d = append(d, "~ "+strings.TrimPrefix(l, "would "))
		}
	}
	return d, nil
}

func (s *SetupItem) Apply(ctx context.Context, env *Env) error {
	_, err := s.run(ctx, env, false)
	return err
}
