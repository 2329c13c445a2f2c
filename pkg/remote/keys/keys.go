// Package keys keeps dom0's per-VM qvm-remote keys: one 256-bit key per VM
// in DIR/VM.key as 64 hex digits, mode 0600 — the layout of qvm-remote 1.x's
// /etc/qubes/remote.d, so existing keys keep working. Keys are read on every
// use, so authorize and revoke take effect at once; outside this package a
// key is only ever shown as its fingerprint.
package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
)

// ErrNoKey is wrapped when a VM has no key: it is not authorized.
var ErrNoKey = errors.New("no key configured")

// ErrBadKey is wrapped when a key is not 64 hex digits.
var ErrBadKey = errors.New("key must be 64 hex digits (256 bits)")

// Key is a per-VM key.
type Key [proto.KeySize]byte

// Generate returns a fresh random key.
func Generate() Key {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		panic(err)
	}
	return k
}

// Parse reads a key from its hex form; surrounding whitespace is ignored.
func Parse(s string) (Key, error) {
	var k Key
	s = strings.TrimSpace(s)
	if len(s) != 2*proto.KeySize {
		return k, ErrBadKey
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return k, ErrBadKey
	}
	return k, nil
}

// Hex is the key's file form. Callers must not log it.
func (k Key) Hex() string { return hex.EncodeToString(k[:]) }

// Fingerprint identifies a key without revealing it: "SHA256:" and the first
// 16 hex digits of the SHA-256 of a domain-separated key.
func (k Key) Fingerprint() string {
	h := sha256.Sum256(append([]byte("qvm-remote key fingerprint\n"), k[:]...))
	return "SHA256:" + hex.EncodeToString(h[:8])
}

// String never shows the key.
func (k Key) String() string { return k.Fingerprint() }

// Store is the key directory.
type Store struct{ Dir string }

func (s Store) path(vm string) (string, error) {
	if !proto.ValidVMName(vm) {
		return "", fmt.Errorf("invalid VM name %q", vm)
	}
	return filepath.Join(s.Dir, vm+".key"), nil
}

// Get returns vm's key, or an error wrapping ErrNoKey. A key file that
// others can read is refused: the key may have leaked.
func (s Store) Get(vm string) (Key, error) {
	var k Key
	p, err := s.path(vm)
	if err != nil {
		return k, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return k, fmt.Errorf("VM %s: %w", vm, ErrNoKey)
	}
	if err != nil {
		return k, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return k, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return k, fmt.Errorf("%s: mode %04o lets others read the key (chmod 600)", p, fi.Mode().Perm())
	}
	b := make([]byte, 256)
	n, _ := f.Read(b)
	k, err = Parse(string(b[:n]))
	if err != nil {
		return k, fmt.Errorf("%s: %w", p, err)
	}
	return k, nil
}

// Authorize stores k for vm, replacing any previous key atomically.
func (s Store) Authorize(vm string, k Key) error {
	p, err := s.path(vm)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.Dir, "."+vm+".key.*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(k.Hex() + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// Revoke removes vm's key; revoking a VM without a key wraps ErrNoKey.
func (s Store) Revoke(vm string) error {
	p, err := s.path(vm)
	if err != nil {
		return err
	}
	if err := os.Remove(p); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("VM %s: %w", vm, ErrNoKey)
	} else if err != nil {
		return err
	}
	return nil
}

// Entry is one authorized VM.
type Entry struct {
	VM          string
	Fingerprint string
	// Err is set when the key file is unusable.
	Err error
}

// List returns every VM with a key file, sorted by name.
func (s Store) List() ([]Entry, error) {
	des, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, de := range des {
		vm, ok := strings.CutSuffix(de.Name(), ".key")
		if !ok || !proto.ValidVMName(vm) {
			continue
		}
		e := Entry{VM: vm}
		if k, err := s.Get(vm); err != nil {
			e.Err = err
		} else {
			e.Fingerprint = k.Fingerprint()
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VM < out[j].VM })
	return out, nil
}
