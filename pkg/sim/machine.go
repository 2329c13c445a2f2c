package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNoMachine is returned when a directory holds no simulated machine.
var ErrNoMachine = errors.New("not a simulated qubes machine")

// Env variables the simulator sets in every domain context. Programs of the
// project never read them: they only read config (see pkg/config), and
// RootEnv is the one variable the shared config loader honours to relocate every
// absolute path under a domain's filesystem root.
const (
	// DirEnv holds the machine directory.
	DirEnv = "QUBES_SIM_DIR"
	// DomainEnv names the domain a process runs in.
	DomainEnv = "QUBES_SIM_DOMAIN"
	// RootEnv is the filesystem root of the domain (see config.RootEnv).
	RootEnv = "QUBES_CLAW_ROOT"
	// SpawnedEnv holds the machine directory in every process a supervisor
	// or a unit starts, and so in their descendants. Unlike DirEnv it is not
	// part of `qubes-sim env`: a dom0 shell on the host or a test's own
	// commands never carry it, so Shutdown can kill exactly the processes
	// that do (orphans of a killed supervisor included).
	SpawnedEnv = "QUBES_SIM_SPAWNED"
)

// Dom0 is the admin domain's name.
const Dom0 = "dom0"

// Info is the content of DIR/machine.json.
type Info struct {
	Version int `json:"version"`
	// Isolation gives dom0 and every VM a network namespace with only loopback.
	Isolation bool `json:"isolation"`
	// ID distinguishes machines (abstract socket names, netns names).
	ID string `json:"id"`
}

// Machine is a simulated Qubes machine rooted at Dir.
type Machine struct {
	Dir  string
	Info Info
}

// Open returns the machine at dir, or an error wrapping ErrNoMachine.
func Open(dir string) (*Machine, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(abs, "machine.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", abs, ErrNoMachine)
	}
	if err != nil {
		return nil, err
	}
	m := &Machine{Dir: abs}
	if err := json.Unmarshal(b, &m.Info); err != nil {
		return nil, fmt.Errorf("%s/machine.json: %w", abs, err)
	}
	return m, nil
}

// FromEnv opens the machine named by $QUBES_SIM_DIR.
func FromEnv() (*Machine, error) {
	dir := os.Getenv(DirEnv)
	if dir == "" {
		return nil, fmt.Errorf("%s is not set (run inside `qubes-sim env DIR`): %w", DirEnv, ErrNoMachine)
	}
	return Open(dir)
}

// StatePath is the qubes state file.
func (m *Machine) StatePath() string { return filepath.Join(m.Dir, "qubes.json") }

// LockPath is the flock file that guards the state file.
func (m *Machine) LockPath() string { return filepath.Join(m.Dir, "qubes.lock") }

// Dom0BinDir holds the tools available on dom0's PATH.
func (m *Machine) Dom0BinDir() string { return filepath.Join(m.Dir, "bin") }

// VMBinDir holds the tools available on every VM's PATH.
func (m *Machine) VMBinDir() string { return filepath.Join(m.Dir, "vmbin") }

// RunDir holds simulator runtime files (supervisor sockets, pids).
func (m *Machine) RunDir() string { return filepath.Join(m.Dir, "run") }

// InvocationLog is the JSON-lines log of every simulated command.
func (m *Machine) InvocationLog() string { return filepath.Join(m.Dir, "log", "invocations.jsonl") }

// DomainDir holds everything of one domain.
func (m *Machine) DomainDir(name string) string { return filepath.Join(m.Dir, "domains", name) }

// Root is the domain's filesystem root: "/" as seen inside the domain.
func (m *Machine) Root(name string) string { return filepath.Join(m.DomainDir(name), "fs") }

// Path maps an absolute path inside domain name to the host path.
func (m *Machine) Path(name, p string) string {
	return filepath.Join(m.Root(name), filepath.Clean("/"+p))
}

// Home is the default user's home directory of the domain, as a host path.
func (m *Machine) Home(name string) string { return m.Path(name, "/home/user") }

// Unmap turns a host path inside the domain's root back into the domain's
// view; ok is false when p lies outside the root.
func (m *Machine) Unmap(name, p string) (string, bool) {
	root := m.Root(name)
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return filepath.Clean("/" + rel), true
}

// randomBytes fills b from the kernel's CSPRNG (getrandom), without
// crypto/rand, whose package initialisation every tool call would pay.
func randomBytes(b []byte) (int, error) {
	for n := 0; n < len(b); {
		k, err := unix.Getrandom(b[n:], 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		n += k
	}
	return len(b), nil
}
