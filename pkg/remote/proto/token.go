package proto

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// KeySize is the size of a per-VM key: 256 bits.
const KeySize = 32

// Claims is everything a token binds. The body is bound by its SHA-256, and
// the timeout because it changes what dom0 does; the VM name is the one dom0
// knows the VM by, so a token minted for one VM is worthless from another.
type Claims struct {
	VM   string
	ID   ID
	Time int64 // client clock, Unix seconds
	// Timeout is the requested timeout in seconds; 0 asks for dom0's default.
	Timeout    uint32
	BodySHA256 [32]byte
}

// NewClaims returns the claims for body.
func NewClaims(vm string, id ID, t time.Time, timeout uint32, body []byte) Claims {
	return Claims{VM: vm, ID: id, Time: t.Unix(), Timeout: timeout, BodySHA256: sha256.Sum256(body)}
}

// Message is the canonical byte string the MAC covers. Every field has a
// fixed label and a format without separators in its alphabet (VM names and
// ids are checked), so two different claims never give the same message.
func (c Claims) Message() []byte {
	return []byte(fmt.Sprintf("qvm-remote-token\nversion:%d\nvm:%s\nid:%s\ntime:%d\ntimeout:%d\nbody-sha256:%s\n",
		Version, c.VM, c.ID, c.Time, c.Timeout, hex.EncodeToString(c.BodySHA256[:])))
}

func (c Claims) check() error {
	if !ValidVMName(c.VM) {
		return fmt.Errorf("%w: invalid VM name", ErrBadToken)
	}
	if _, err := ParseID(string(c.ID)); err != nil {
		return err
	}
	return nil
}

// Sign returns the HMAC-SHA256 of c under key.
func Sign(key []byte, c Claims) ([32]byte, error) {
	var mac [32]byte
	if len(key) != KeySize {
		return mac, fmt.Errorf("key is %d bytes, want %d", len(key), KeySize)
	}
	if err := c.check(); err != nil {
		return mac, err
	}
	h := hmac.New(sha256.New, key)
	h.Write(c.Message())
	copy(mac[:], h.Sum(nil))
	return mac, nil
}

// Verify reports whether mac authenticates c under key, in constant time.
func Verify(key []byte, c Claims, mac [32]byte) bool {
	want, err := Sign(key, c)
	if err != nil {
		return false
	}
	return hmac.Equal(want[:], mac[:])
}

// Token is what the client stores next to a queued body (pending/ID.auth):
// the claims that are not derivable from the entry itself, and the MAC.
type Token struct {
	Time    int64
	Timeout uint32
	MAC     [32]byte
}

// String encodes t as "v2.TIME.TIMEOUT.MAC" (decimal, decimal, 64 lower-case
// hex digits).
func (t Token) String() string {
	return fmt.Sprintf("v%d.%d.%d.%s", Version, t.Time, t.Timeout, hex.EncodeToString(t.MAC[:]))
}

// ParseToken parses the output of Token.String, allowing one trailing
// newline. Anything else (other versions, signs, leading zeros, upper-case
// hex, spaces) is an error wrapping ErrBadToken, so one token has exactly one
// spelling.
func ParseToken(s string) (Token, error) {
	var t Token
	s = strings.TrimSuffix(s, "\n")
	parts := strings.Split(s, ".")
	if len(parts) != 4 || parts[0] != "v"+strconv.Itoa(Version) {
		return t, fmt.Errorf("%w: want v%d.TIME.TIMEOUT.MAC", ErrBadToken, Version)
	}
	ts, err := canonicalUint(parts[1], 63)
	if err != nil {
		return t, fmt.Errorf("%w: time: %v", ErrBadToken, err)
	}
	to, err := canonicalUint(parts[2], 32)
	if err != nil {
		return t, fmt.Errorf("%w: timeout: %v", ErrBadToken, err)
	}
	if len(parts[3]) != 64 || strings.ToLower(parts[3]) != parts[3] {
		return t, fmt.Errorf("%w: MAC must be 64 lower-case hex digits", ErrBadToken)
	}
	if _, err := hex.Decode(t.MAC[:], []byte(parts[3])); err != nil {
		return t, fmt.Errorf("%w: MAC: %v", ErrBadToken, err)
	}
	t.Time, t.Timeout = int64(ts), uint32(to)
	return t, nil
}

// canonicalUint parses a decimal without sign or leading zeros.
func canonicalUint(s string, bits int) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("not a canonical decimal: %q", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("not a canonical decimal: %q", s)
		}
	}
	return strconv.ParseUint(s, 10, bits)
}

// CheckTime reports whether a client timestamp lies within window of now.
func CheckTime(ts int64, now time.Time, window time.Duration) bool {
	d := now.Unix() - ts
	if d < 0 {
		d = -d
	}
	return d <= int64(window/time.Second)
}
