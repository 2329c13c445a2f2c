package tunnel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// SocketName is the control socket's name in the runtime directory.
const SocketName = "control.sock"

// ErrNotRunning is returned by Query when no daemon answers.
var ErrNotRunning = errors.New("qubes-claw-tunnel is not running")

// Status is the daemon's state as `qubes-claw-tunnel status` shows it.
type Status struct {
	Pid       int            `json:"pid"`
	Transport string         `json:"transport"`
	Started   time.Time      `json:"started"`
	Tunnels   []TunnelStatus `json:"tunnels"`
}

// TunnelStatus is one tunnel's state and counters.
type TunnelStatus struct {
	Name      string `json:"name"`
	Listen    string `json:"listen"`
	VM        string `json:"vm"`
	Port      int    `json:"port"`
	Service   string `json:"service"`
	Listening bool   `json:"listening"`
	// VMReachable is the daemon's view: false after a channel failed for
	// want of the VM, until a retry succeeds.
	VMReachable bool      `json:"vm_reachable"`
	DownSince   time.Time `json:"down_since,omitzero"`
	DownReason  string    `json:"down_reason,omitempty"`
	Active      int       `json:"active"`
	PoolIdle    int       `json:"pool_idle"`
	Total       int64     `json:"total"`
	Refused     int64     `json:"refused"`
	Failed      int64     `json:"failed"`
	BytesIn     int64     `json:"bytes_in"`
	BytesOut    int64     `json:"bytes_out"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Status returns a snapshot of every tunnel.
func (d *Daemon) Status() Status {
	st := Status{Pid: os.Getpid(), Transport: d.cfg.Transport, Started: d.started}
	for _, t := range d.tunnels {
		t.mu.Lock()
		ts := TunnelStatus{
			Name: t.cfg.Name, Listen: t.cfg.Listen, VM: t.cfg.VM, Port: t.cfg.Port, Service: t.cfg.Service,
			Listening: t.ln != nil, VMReachable: !t.down, Active: len(t.conns), PoolIdle: len(t.idle),
			Total: t.stats.total, Refused: t.stats.refused, Failed: t.stats.failed,
			BytesIn: t.stats.bytesIn, BytesOut: t.stats.bytesOut,
			LastError: t.lastErr, LastErrorAt: t.lastErrAt,
		}
		if t.ln != nil {
			ts.Listen = t.ln.Addr().String()
		}
		if t.down {
			ts.DownSince, ts.DownReason = t.downSince, t.downReason
		}
		t.mu.Unlock()
		st.Tunnels = append(st.Tunnels, ts)
	}
	return st
}

// ListenControl creates the control socket in dir. A socket left by a dead
// daemon is replaced; one a live daemon answers on is an error.
func ListenControl(dir string) (net.Listener, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("runtime directory: %w", err)
	}
	path := filepath.Join(dir, SocketName)
	addr, done, err := sockAddr(dir)
	if err != nil {
		return nil, err
	}
	defer done()
	if c, err := net.DialTimeout("unix", addr, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s: another qubes-claw-tunnel is running", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", addr)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	// The name it was bound by may be a /proc alias: remove by the real one.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	// The status is no secret to local users (it holds names and counters
	// only), and the desktop user asks for it without being the daemon's.
	os.Chmod(path, 0o666)
	return &removing{Listener: ln, path: path}, nil
}

type removing struct {
	net.Listener
	path string
}

func (r *removing) Close() error {
	err := r.Listener.Close()
	os.Remove(r.path)
	return err
}

// sockAddr returns the address of the control socket in dir. A path longer
// than a sockaddr_un holds (deep relocated roots in tests and the simulator)
// is reached through /proc/self/fd of the opened directory; done closes it.
func sockAddr(dir string) (string, func(), error) {
	path := filepath.Join(dir, SocketName)
	if len(path) < 100 {
		return path, func() {}, nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return "", nil, fmt.Errorf("runtime directory: %w", err)
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", f.Fd(), SocketName), func() { f.Close() }, nil
}

// ServeControl answers every connection on ln with the status as JSON,
// until ctx ends; it then closes ln (removing the socket).
func (d *Daemon) ServeControl(ctx context.Context, ln net.Listener) {
	go func() { <-ctx.Done(); ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		json.NewEncoder(c).Encode(d.Status())
		c.Close()
	}
}

// Query reads the status from the daemon whose runtime directory is dir.
func Query(ctx context.Context, dir string) (Status, error) {
	var st Status
	path := filepath.Join(dir, SocketName)
	addr, done, err := sockAddr(dir)
	if err != nil {
		return st, fmt.Errorf("%w (%v)", ErrNotRunning, err)
	}
	defer done()
	var dl net.Dialer
	c, err := dl.DialContext(ctx, "unix", addr)
	if err != nil {
		return st, fmt.Errorf("%w (no answer on %s: %v)", ErrNotRunning, path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := json.NewDecoder(c).Decode(&st); err != nil {
		return st, fmt.Errorf("read status from %s: %w", path, err)
	}
	return st, nil
}
