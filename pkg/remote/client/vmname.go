package client

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
	"github.com/qubes-claw/qubes-claw/pkg/remote/queue"
)

// ErrNoVMName is returned when no source names this VM.
var ErrNoVMName = errors.New("cannot tell this VM's name: set vm_name in the config")

// VMName returns the name tokens are bound to, from the first source that
// gives a valid name: the configured one; the one dom0 announced on its
// last channel (authoritative: it is how dom0 checks the token); qubesdb's
// /name; the host name (Qubes sets it to the VM name).
func VMName(ctx context.Context, configured string, q queue.Dir) (name, source string, err error) {
	if configured != "" {
		return configured, "config", nil
	}
	if b, err := os.ReadFile(q.VMNameFile()); err == nil {
		if s := strings.TrimSpace(string(b)); proto.ValidVMName(s) {
			return s, "announced by dom0", nil
		}
	}
	if p, err := exec.LookPath("qubesdb-read"); err == nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, p, "/name").Output(); err == nil {
			if s := strings.TrimSpace(string(out)); proto.ValidVMName(s) {
				return s, "qubesdb", nil
			}
		}
	}
	if h, err := os.Hostname(); err == nil && proto.ValidVMName(h) {
		return h, SourceHostname, nil
	}
	return "", "", ErrNoVMName
}

// SourceHostname is the weakest source VMName uses: a guess.
const SourceHostname = "host name"

// WaitAnnounced waits up to timeout for dom0 to announce this VM's name (the
// agent writes it when dom0's channel opens) and returns it. The client
// uses it instead of signing with a guessed name, which dom0 would refuse.
func WaitAnnounced(ctx context.Context, q queue.Dir, timeout time.Duration) (string, error) {
	read := func() (string, bool) {
		b, err := os.ReadFile(q.VMNameFile())
		s := strings.TrimSpace(string(b))
		return s, err == nil && proto.ValidVMName(s)
	}
	if err := os.MkdirAll(string(q), 0o700); err != nil {
		return "", err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return "", err
	}
	defer w.Close()
	if err := w.Add(string(q)); err != nil {
		return "", err
	}
	if s, ok := read(); ok {
		return s, nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-t.C:
			return "", ErrNoVMName
		case <-w.Events:
		case <-w.Errors:
		}
		if s, ok := read(); ok {
			return s, nil
		}
	}
}
