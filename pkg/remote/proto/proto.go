// Package proto is everything qvm-remote parses from the VM side, which dom0
// treats as hostile: the frames of a channel, command ids, tokens and command
// bodies. Parsers are strict (exact formats, hard size limits checked before
// any allocation) and fuzzed; encoders produce only what the parsers accept.
//
// A channel is a byte stream (the stdin/stdout of qvm-run --pass-io) carrying
// frames: a 1-byte type, a 4-byte big-endian payload length, the payload.
// Each type has its own length limit and fixed payload layout; an unknown type,
// an over-long frame or a payload that does not parse exactly is a protocol
// violation and ends the channel.
package proto

import (
	"errors"
	"fmt"
)

// Version is the protocol version, carried in Hello frames and bound into
// every token. qvm-remote 1.x was version 1. Version 3 added Ack and sends a
// resubmitted command's output again from its start: a version 2 agent would
// append that output twice, and a version 2 daemon cuts off a channel that
// sends an Ack.
const Version = 3

// Hard limits of the protocol. Configuration may lower MaxBody, not raise it.
const (
	// MaxBody is the largest command body a Submit frame may carry.
	MaxBody = 4 << 20
	// MaxChunk is the largest piece of output one Output frame carries.
	MaxChunk = 64 << 10
	// MaxIDLen is the longest command id.
	MaxIDLen = 64
	// MaxVMName is the longest Qubes VM name.
	MaxVMName = 31
	// MaxDetail is the longest detail text of a Result frame.
	MaxDetail = 200
)

// Errors of the parsers; every parse error wraps one of them.
var (
	// ErrProtocol marks a frame that violates the protocol; the channel it
	// came from must be closed.
	ErrProtocol = errors.New("protocol violation")
	// ErrBadID marks a malformed command id.
	ErrBadID = errors.New("malformed command id")
	// ErrBadToken marks a malformed token.
	ErrBadToken = errors.New("malformed token")
	// ErrEmpty, ErrTooLarge and ErrBinary are the body validation failures.
	ErrEmpty    = errors.New("empty command")
	ErrTooLarge = errors.New("command too large")
	ErrBinary   = errors.New("binary content")
)

func violation(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, a...))
}
