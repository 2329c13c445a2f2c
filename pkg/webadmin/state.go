package webadmin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/qubes"
	"github.com/qubes-claw/qubes-claw/pkg/remote/keys"
	"github.com/qubes-claw/qubes-claw/pkg/tunnel"
)

// Overview is everything the page shows, gathered in one pass.
type Overview struct {
	Time    time.Time     `json:"time"`
	Remote  RemoteStatus  `json:"remote"`
	Agent   AgentStatus   `json:"agent"`
	Tunnel  TunnelsStatus `json:"tunnel"`
	Proxy   ProbeStatus   `json:"proxy"`
	Gateway ProbeStatus   `json:"gateway"`
}

// UnitStatus is a systemd unit's state.
type UnitStatus struct {
	Unit string `json:"unit"`
	// Active is systemctl is-active's word: active, inactive, failed, ...
	Active string `json:"active"`
	// Enabled is systemctl is-enabled's word: enabled, disabled, static, ...
	Enabled string `json:"enabled"`
	Err     string `json:"error,omitempty"`
}

// Running reports whether the unit is active.
func (u UnitStatus) Running() bool { return u.Active == "active" || u.Active == "reloading" }

// AtBoot reports whether the unit starts at boot.
func (u UnitStatus) AtBoot() bool { return u.Enabled == "enabled" || u.Enabled == "enabled-runtime" }

// RemoteStatus is qvm-remote-dom0 and the VMs it may serve.
type RemoteStatus struct {
	UnitStatus
	Authorized []AuthorizedVM `json:"authorized"`
	Queue      QueueHealth    `json:"queue"`
	KeysErr    string         `json:"keys_error,omitempty"`
}

// AuthorizedVM is a VM with a qvm-remote key: only its fingerprint leaves
// the key store.
type AuthorizedVM struct {
	VM          string `json:"vm"`
	Fingerprint string `json:"fingerprint,omitempty"`
	State       string `json:"state"`
	Err         string `json:"error,omitempty"`
}

// AgentStatus is the agent VM.
type AgentStatus struct {
	VM        string            `json:"vm"`
	State     string            `json:"state"`
	Autostart bool              `json:"autostart"`
	Tags      []string          `json:"tags"`
	Features  map[string]string `json:"features"`
	// Services are the qvm-service flags (features named service.X).
	Services map[string]bool `json:"services"`
	Err      string          `json:"error,omitempty"`
}

// TunnelsStatus is the tunnel daemon and, while it runs, each tunnel.
type TunnelsStatus struct {
	UnitStatus
	Tunnels []TunnelState `json:"tunnels"`
	// StatusErr is why the control socket gave no status.
	StatusErr string `json:"status_error,omitempty"`
}

// TunnelState is one tunnel as qubes-claw-tunnel reports it, with the VM's
// power state from qvm-ls next to the daemon's own view (which changes only
// when a channel fails).
type TunnelState struct {
	tunnel.TunnelStatus
	VMState string `json:"vm_state,omitempty"`
}

// Up reports whether the tunnel can carry a connection now.
func (t TunnelState) Up() bool {
	return t.Listening && t.VMReachable && (t.VMState == "" || t.VMState == "Running")
}

// Running reports whether the agent VM runs.
func (a AgentStatus) Running() bool { return a.State == "Running" }

// ProbeStatus is an HTTP endpoint reached through a tunnel.
type ProbeStatus struct {
	URL      string `json:"url"`
	OK       bool   `json:"ok"`
	Status   string `json:"status,omitempty"`
	Provider string `json:"provider,omitempty"`
	Version  string `json:"version,omitempty"`
	Err      string `json:"error,omitempty"`
}

// Backend is what the server reads and changes; System is the real one.
type Backend interface {
	Overview(ctx context.Context) Overview
	StartRemote(ctx context.Context) error
	StopRemote(ctx context.Context) error
	RestartTunnel(ctx context.Context) error
	Revoke(ctx context.Context, vm string) error
}

// ErrNotAuthorized is returned by Revoke for a VM without a key.
var ErrNotAuthorized = errors.New("VM is not authorized")

// System is the Backend over the Qubes tools, dom0's systemctl, the
// qvm-remote key directory and HTTP probes through the tunnels.
type System struct {
	Cfg    Config
	Qubes  *qubes.Client
	Keys   keys.Store
	Feed   *Feed
	Client *http.Client

	mu     sync.Mutex
	cached Overview
	at     time.Time
	flight chan struct{}
}

// Overview gathers the state at most once per Cfg.Refresh: every open page
// polls, and each check spawns tools (in dom0, qvm-* calls cost qubesd time).
func (s *System) Overview(ctx context.Context) Overview {
	s.mu.Lock()
	if !s.at.IsZero() && time.Since(s.at) < s.Cfg.Refresh/2 {
		o := s.cached
		s.mu.Unlock()
		return o
	}
	if s.flight != nil {
		wait := s.flight
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
		}
		s.mu.Lock()
		o := s.cached
		s.mu.Unlock()
		return o
	}
	done := make(chan struct{})
	s.flight = done
	s.mu.Unlock()

	o := s.gather(ctx)

	s.mu.Lock()
	s.cached, s.at, s.flight = o, time.Now(), nil
	s.mu.Unlock()
	close(done)
	return o
}

// invalidate makes the next Overview gather afresh (after an action).
func (s *System) invalidate() {
	s.mu.Lock()
	s.at = time.Time{}
	s.mu.Unlock()
}

func (s *System) gather(ctx context.Context) Overview {
	ctx, cancel := context.WithTimeout(ctx, s.Cfg.ProbeTimeout)
	defer cancel()
	o := Overview{Time: time.Now()}
	var wg sync.WaitGroup
	run := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	var states map[string]string
	var statesErr error
	run(func() { o.Remote.UnitStatus = s.unit(ctx, s.Cfg.Remote.Unit) })
	run(func() { o.Tunnel.UnitStatus = s.unit(ctx, s.Cfg.Tunnel.Unit) })
	run(func() { o.Tunnel.Tunnels, o.Tunnel.StatusErr = s.tunnels(ctx) })
	run(func() { o.Proxy = s.probe(ctx, s.Cfg.Proxy.URL) })
	run(func() { o.Gateway = s.probe(ctx, s.Cfg.Gateway.URL) })
	run(func() { states, statesErr = s.vmStates(ctx) })
	run(func() { o.Agent = s.agent(ctx) })
	wg.Wait()

	if s.Feed != nil {
		o.Remote.Queue = s.Feed.Health()
	}
	entries, err := s.Keys.List()
	if err != nil {
		o.Remote.KeysErr = err.Error()
	}
	for _, e := range entries {
		a := AuthorizedVM{VM: e.VM, Fingerprint: e.Fingerprint, State: states[e.VM]}
		if e.Err != nil {
			// Get's errors name the file and the mode, never the key.
			a.Err = e.Err.Error()
		}
		if a.State == "" {
			a.State = "unknown"
			if statesErr == nil {
				a.State = "no such VM"
			}
		}
		o.Remote.Authorized = append(o.Remote.Authorized, a)
	}
	for i := range o.Tunnel.Tunnels {
		o.Tunnel.Tunnels[i].VMState = states[o.Tunnel.Tunnels[i].VM]
	}
	if o.Agent.VM != "" && o.Agent.Err == "" {
		if st, ok := states[o.Agent.VM]; ok {
			o.Agent.State = st
		} else if statesErr != nil {
			o.Agent.Err = statesErr.Error()
		}
	}
	return o
}

// unit asks systemctl for a unit's active and enabled state. Both verbs
// print the state and exit non-zero for anything but active/enabled, so
// the output, not the status, is the answer.
func (s *System) unit(ctx context.Context, unit string) UnitStatus {
	u := UnitStatus{Unit: unit}
	for _, q := range []struct {
		verb string
		dst  *string
	}{{"is-active", &u.Active}, {"is-enabled", &u.Enabled}} {
		out, err := s.Qubes.Systemctl(ctx, q.verb, unit)
		word := strings.TrimSpace(string(out))
		var ce *qubes.CommandError
		switch {
		case word != "":
			*q.dst = word
		case err != nil && !errors.As(err, &ce):
			u.Err = err.Error()
		case err != nil:
			*q.dst = "unknown"
			u.Err = strings.TrimSpace(ce.Stderr)
			if u.Err == "" {
				u.Err = err.Error()
			}
		}
	}
	return u
}

// tunnels asks the tunnel daemon for its status on its control socket.
func (s *System) tunnels(ctx context.Context) ([]TunnelState, string) {
	st, err := tunnel.Query(ctx, string(s.Cfg.Tunnel.RuntimeDir))
	if err != nil {
		return nil, err.Error()
	}
	out := make([]TunnelState, len(st.Tunnels))
	for i, t := range st.Tunnels {
		out[i] = TunnelState{TunnelStatus: t}
	}
	return out, ""
}

// vmStates reads every qube's power state in one qvm-ls call.
func (s *System) vmStates(ctx context.Context) (map[string]string, error) {
	out, err := s.runner().Run(ctx, []string{"qvm-ls", "--raw-data", "--fields", "name,state"}, nil)
	if err != nil {
		return nil, fmt.Errorf("qvm-ls: %w", err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if name, st, ok := strings.Cut(strings.TrimSpace(line), "|"); ok && name != "" {
			m[name] = st
		}
	}
	return m, nil
}

func (s *System) runner() qubes.Runner {
	if s.Qubes.Runner != nil {
		return s.Qubes.Runner
	}
	return qubes.ExecRunner{}
}

// agentVM is the configured agent VM or the one carrying the agent tag.
func (s *System) agentVM(ctx context.Context) (string, error) {
	if s.Cfg.Agent.VM != "" {
		return s.Cfg.Agent.VM, nil
	}
	out, err := s.runner().Run(ctx, []string{"qvm-ls", "--raw-list", "--tags", s.Cfg.Agent.Tag}, nil)
	if err != nil {
		return "", fmt.Errorf("qvm-ls --tags %s: %w", s.Cfg.Agent.Tag, err)
	}
	names := strings.Fields(string(out))
	switch len(names) {
	case 0:
		return "", fmt.Errorf("no VM carries the tag %s (set agent.vm)", s.Cfg.Agent.Tag)
	case 1:
		return names[0], nil
	}
	return "", fmt.Errorf("several VMs carry the tag %s: %s (set agent.vm)", s.Cfg.Agent.Tag, strings.Join(names, ", "))
}

func (s *System) agent(ctx context.Context) AgentStatus {
	var a AgentStatus
	vm, err := s.agentVM(ctx)
	if err != nil {
		a.Err = err.Error()
		return a
	}
	a.VM = vm
	var wg sync.WaitGroup
	var errs [3]error
	wg.Add(3)
	go func() {
		defer wg.Done()
		var v string
		v, errs[0] = s.Qubes.GetPref(ctx, vm, "autostart")
		a.Autostart = v == "True"
	}()
	go func() { defer wg.Done(); a.Tags, errs[1] = s.Qubes.Tags(ctx, vm) }()
	go func() { defer wg.Done(); a.Features, errs[2] = s.Qubes.Features(ctx, vm) }()
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		a.Err = err.Error()
	}
	sort.Strings(a.Tags)
	a.Services = map[string]bool{}
	for k, v := range a.Features {
		if name, ok := strings.CutPrefix(k, "service."); ok {
			a.Services[name] = v == "1"
			delete(a.Features, k)
		}
	}
	return a
}

// probe GETs url through the tunnel. Any answer means the port is
// reachable; for the proxy, /health's JSON also names the provider.
func (s *System) probe(ctx context.Context, url string) ProbeStatus {
	p := ProbeStatus{URL: url}
	if url == "" {
		p.Err = "not configured"
		return p
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		p.Err = err.Error()
		return p
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		p.Err = trimURLError(err)
		return p
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	p.Status = resp.Status
	p.OK = resp.StatusCode < 500
	var h struct {
		Status   string `json:"status"`
		Provider string `json:"provider"`
		Version  string `json:"proxy_version"`
	}
	if json.Unmarshal(body, &h) == nil {
		p.Provider, p.Version = h.Provider, h.Version
		if h.Status != "" {
			p.Status = h.Status
		}
	}
	return p
}

// trimURLError drops the "Get \"URL\": " prefix the page already shows.
func trimURLError(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return err.Error()
}

// StartRemote starts qvm-remote-dom0 for this boot only (systemctl start:
// the unit's enablement is untouched).
func (s *System) StartRemote(ctx context.Context) error {
	defer s.invalidate()
	_, err := s.Qubes.Systemctl(ctx, "start", s.Cfg.Remote.Unit)
	return err
}

// StopRemote stops qvm-remote-dom0 (until it is started again, or the next
// boot if it is enabled).
func (s *System) StopRemote(ctx context.Context) error {
	defer s.invalidate()
	_, err := s.Qubes.Systemctl(ctx, "stop", s.Cfg.Remote.Unit)
	return err
}

// RestartTunnel restarts the tunnel daemon: every tunnel re-listens and
// re-opens its channels.
func (s *System) RestartTunnel(ctx context.Context) error {
	defer s.invalidate()
	_, err := s.Qubes.Systemctl(ctx, "restart", s.Cfg.Tunnel.Unit)
	return err
}

// Revoke removes vm's qvm-remote key. The daemon reads keys on every
// command, so the VM's next command is refused (AUTH-FAIL).
func (s *System) Revoke(_ context.Context, vm string) error {
	defer s.invalidate()
	err := s.Keys.Revoke(vm)
	if errors.Is(err, keys.ErrNoKey) {
		return fmt.Errorf("%s: %w", vm, ErrNotAuthorized)
	}
	return err
}
