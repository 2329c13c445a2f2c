// Package audit writes dom0's qvm-remote audit trail: one logrus line per
// event with a fixed category, the VM and the command id. It takes no keys
// and no tokens (a key appears only as its fingerprint), and the command text
// only as a bounded, quoted preview plus its hash.
package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/sirupsen/logrus"

	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
)

// Category classifies an audit event.
type Category string

// Categories.
const (
	Exec     Category = "EXEC"      // a command starts
	AuthOK   Category = "AUTH-OK"   // token verified
	AuthFail Category = "AUTH-FAIL" // bad token, wrong key, no key
	Reject   Category = "REJECT"    // refused before authentication or run (validation, replay, busy, ...)
	Deny     Category = "DENY"      // refused by per-VM policy
	Done     Category = "DONE"      // exited 0
	DoneFail Category = "DONE-FAIL" // exited non-zero
	Timeout  Category = "TIMEOUT"   // killed at its timeout
	Trunc    Category = "TRUNC"     // output truncated
	Channel  Category = "CHANNEL"   // a channel opened, closed or was cut off
)

func (c Category) level() logrus.Level {
	switch c {
	case AuthFail, Reject, Deny, Timeout, Trunc:
		return logrus.WarnLevel
	}
	return logrus.InfoLevel
}

// Log records audit events.
type Log struct{ e *logrus.Entry }

// New returns a Log writing through e.
func New(e *logrus.Entry) *Log { return &Log{e: e.WithField("component", "audit")} }

// Record logs one event.
func (l *Log) Record(c Category, vm string, id proto.ID, msg string, fields logrus.Fields) {
	e := l.e.WithField("audit", string(c))
	if vm != "" {
		e = e.WithField("vm", vm)
	}
	if id != "" {
		e = e.WithField("id", string(id))
	}
	e.WithFields(fields).Log(c.level(), msg)
}

// PreviewLen bounds the command text kept in the audit log.
const PreviewLen = 120

// Command returns the audit fields of a command body: a quoted preview (so
// control bytes and newlines cannot forge log lines), its size and hash.
func Command(body []byte) logrus.Fields {
	p := body
	if len(p) > PreviewLen {
		p = p[:PreviewLen]
	}
	sum := sha256.Sum256(body)
	return logrus.Fields{
		"cmd":    strconv.Quote(string(p)),
		"size":   len(body),
		"sha256": hex.EncodeToString(sum[:8]),
	}
}
