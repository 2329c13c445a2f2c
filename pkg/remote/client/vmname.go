package client

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"time"

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
		return h, "host name", nil
	}
	return "", "", ErrNoVMName
}
