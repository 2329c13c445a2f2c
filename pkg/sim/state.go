package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
)

// Domain classes, named as Qubes names them (the Python class name).
const (
	AdminVM      = "AdminVM"
	AppVM        = "AppVM"
	TemplateVM   = "TemplateVM"
	StandaloneVM = "StandaloneVM"
	DispVM       = "DispVM"
)

// Power states as admin.vm.CurrentState reports them.
const (
	Halted  = "Halted"
	Running = "Running"
	Paused  = "Paused"
)

// Domain is one qube in the state file.
type Domain struct {
	Name  string `json:"name"`
	Class string `json:"class"`
	QID   int    `json:"qid"`
	UUID  string `json:"uuid"`
	// Props holds explicitly set properties (label, template, netvm, memory,
	// autostart, ...) as the strings qvm-prefs accepts; an absent key means
	// "default", computed by the property table (see prefs.go).
	Props    map[string]string `json:"props,omitempty"`
	Tags     []string          `json:"tags,omitempty"`
	Features map[string]string `json:"features,omitempty"`
	Power    string            `json:"power"`
}

// Running reports whether qvm-check --running would say so: every state but
// Halted counts, paused included (qubes.md §3.2).
func (d *Domain) Running() bool { return d.Power != "" && d.Power != Halted }

// HasTag reports whether the domain carries tag.
func (d *Domain) HasTag(tag string) bool {
	i := sort.SearchStrings(d.Tags, tag)
	return i < len(d.Tags) && d.Tags[i] == tag
}

// AddTag adds tag, keeping Tags sorted; it reports whether it was new.
func (d *Domain) AddTag(tag string) bool {
	if d.HasTag(tag) {
		return false
	}
	d.Tags = append(d.Tags, tag)
	sort.Strings(d.Tags)
	return true
}

// DelTag removes tag; it reports whether it was present.
func (d *Domain) DelTag(tag string) bool {
	i := sort.SearchStrings(d.Tags, tag)
	if i >= len(d.Tags) || d.Tags[i] != tag {
		return false
	}
	d.Tags = append(d.Tags[:i], d.Tags[i+1:]...)
	return true
}

// State is the whole qubes state of a machine.
type State struct {
	Version int                `json:"version"`
	NextQID int                `json:"next_qid"`
	Domains map[string]*Domain `json:"domains"`
	// Global holds explicitly set global properties (qubes-prefs:
	// default_template, default_netvm, ...); absent means default (prefs.go).
	Global map[string]string `json:"global,omitempty"`
}

// Domain returns the named domain or nil.
func (s *State) Domain(name string) *Domain { return s.Domains[name] }

// Names returns all domain names, sorted, dom0 first as qvm-ls shows them.
func (s *State) Names() []string {
	names := make([]string, 0, len(s.Domains))
	for n := range s.Domains {
		if n != Dom0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if s.Domains[Dom0] != nil {
		names = append([]string{Dom0}, names...)
	}
	return names
}

// View calls fn with the current state under a shared lock. fn must not keep
// the pointer after it returns.
func (m *Machine) View(fn func(*State) error) error {
	return m.locked(unix.LOCK_SH, func() error {
		st, err := m.readState()
		if err != nil {
			return err
		}
		return fn(st)
	})
}

// Load returns a snapshot of the state.
func (m *Machine) Load() (*State, error) {
	var out *State
	err := m.View(func(s *State) error { out = s; return nil })
	return out, err
}

// Update runs fn under an exclusive lock and writes the state back atomically
// if fn returns nil. An error from fn leaves the state file untouched.
func (m *Machine) Update(fn func(*State) error) error {
	return m.locked(unix.LOCK_EX, func() error {
		st, err := m.readState()
		if err != nil {
			return err
		}
		if err := fn(st); err != nil {
			return err
		}
		return m.writeState(st)
	})
}

func (m *Machine) locked(how int, fn func() error) error {
	f, err := os.OpenFile(m.LockPath(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("state lock: %w", err)
	}
	defer f.Close()
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("state lock: %w", err)
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return fn()
}

func (m *Machine) readState() (*State, error) {
	b, err := os.ReadFile(m.StatePath())
	if err != nil {
		return nil, fmt.Errorf("read qubes state: %w", err)
	}
	st := &State{}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("%s: %w", m.StatePath(), err)
	}
	if st.Domains == nil {
		st.Domains = map[string]*Domain{}
	}
	m.reconcilePower(st)
	return st, nil
}

func (m *Machine) writeState(st *State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(m.StatePath(), append(b, '\n'), 0o644)
}

// WriteFileAtomic writes data to a temporary file beside path and renames it
// over path, so readers never see a partial file.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
