package proto

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// ID names one command. It doubles as a file name in the VM's queue and in
// dom0's ledger, so its alphabet excludes every path character: 1 to 64 of
// [A-Za-z0-9_-], starting with a letter or digit (so never "." or "..", never
// an option, never a 1.x ".auth" side file).
type ID string

// ParseID returns s as an ID, or an error wrapping ErrBadID.
func ParseID(s string) (ID, error) {
	if len(s) == 0 || len(s) > MaxIDLen {
		return "", fmt.Errorf("%w: length %d not in 1..%d", ErrBadID, len(s), MaxIDLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return "", fmt.Errorf("%w: byte %q at %d", ErrBadID, c, i)
		}
	}
	return ID(s), nil
}

// NewID returns a fresh id in the 1.x shape DATE-TIME-PID-RANDOM, with 64
// random bits so ids never collide across VMs and restarts.
func NewID(now time.Time, pid int) ID {
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux ≥ 3.17
	}
	return ID(fmt.Sprintf("%s-%d-%s", now.UTC().Format("20060102-150405"), pid%10_000_000, hex.EncodeToString(r[:])))
}

// ValidVMName reports whether s is a Qubes VM name (qubesadmin's rule: a
// letter, then letters, digits, '_', '.', '-'; at most 31 bytes).
func ValidVMName(s string) bool {
	if len(s) == 0 || len(s) > MaxVMName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}
