package proto

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Type is a frame type.
type Type uint8

// Frame types. Hello goes both ways first; Submit, Sync and Ack go VM →
// dom0; Output and Result go dom0 → VM.
const (
	TypeHello  Type = 1
	TypeSubmit Type = 2
	TypeOutput Type = 3
	TypeResult Type = 4
	TypeSync   Type = 5
	TypeAck    Type = 6
)

const headerSize = 5

// maxPayload is the hard limit of each frame type.
func maxPayload(t Type) (int, bool) {
	switch t {
	case TypeHello:
		return 4 + 2 + 1 + MaxVMName, true
	case TypeSubmit:
		return 1 + MaxIDLen + 8 + 4 + 32 + MaxBody, true
	case TypeOutput:
		return 1 + MaxIDLen + 1 + MaxChunk, true
	case TypeResult:
		return 1 + MaxIDLen + 1 + 1 + 1 + 1 + 4 + 1 + MaxDetail, true
	case TypeSync:
		return 0, true
	case TypeAck:
		return 1 + MaxIDLen, true
	}
	return 0, false
}

// Message is a decoded frame.
type Message interface {
	Type() Type
	appendPayload([]byte) []byte
}

var helloMagic = [4]byte{'Q', 'V', 'M', 'R'}

// Hello opens a channel in each direction. dom0's Hello names the VM as dom0
// knows it (the name tokens must bind); the VM's Hello leaves VM empty.
type Hello struct {
	Version uint16
	VM      string
}

// Submit asks dom0 to run Body.
type Submit struct {
	ID      ID
	Time    int64
	Timeout uint32
	MAC     [32]byte
	Body    []byte
}

// Sync tells dom0 that the VM has handed over every entry that was queued
// when the channel opened (the backlog); `--once` runs stop after it.
type Sync struct{}

// Ack tells dom0 that the VM has recorded the Result of ID (and so all of its
// output): dom0 may forget them. Until then dom0 keeps both, because a
// channel that breaks can take frames with it that were sent but never
// handled; the VM hands the unfinished command in again on its next channel
// and dom0 sends its output from the start and its result once more.
type Ack struct {
	ID ID
}

// Stream names an output stream.
type Stream uint8

// Output streams.
const (
	Stdout Stream = 1
	Stderr Stream = 2
)

// Output is a piece of a running command's output. dom0 sends a command's
// output only on a channel the command was submitted on, in order, and from
// its first byte after every (re)submission; the VM keeps what it already
// has (a prefix of it) and skips that much.
type Output struct {
	ID     ID
	Stream Stream
	Data   []byte
}

// Status is how a command ended.
type Status uint8

// Statuses. Exited carries the exit code; TimedOut means the command was
// killed at its timeout (the client exits 124); Refused means dom0 did not run
// it, or not to the end, for Reason (the client exits 255).
const (
	Exited   Status = 1
	TimedOut Status = 2
	Refused  Status = 3
)

// Reason says why a command was refused.
type Reason uint8

// Refusal reasons.
const (
	ReasonNone Reason = iota
	ReasonAuth
	ReasonNoKey
	ReasonStale
	ReasonReplay
	ReasonEmpty
	ReasonBinary
	ReasonTooLarge
	ReasonBadID
	ReasonBadTimeout
	ReasonDenied
	ReasonBusy
	ReasonInterrupted
	ReasonInternal
	reasonEnd
)

var reasonText = [...]string{
	ReasonNone:        "",
	ReasonAuth:        "rejected: authentication failed",
	ReasonNoKey:       "rejected: no key configured for this VM in dom0",
	ReasonStale:       "rejected: timestamp outside the allowed window (check the clocks)",
	ReasonReplay:      "rejected: command id already used (replay)",
	ReasonEmpty:       "rejected: empty command",
	ReasonBinary:      "rejected: binary content",
	ReasonTooLarge:    "rejected: command too large",
	ReasonBadID:       "rejected: malformed command id",
	ReasonBadTimeout:  "rejected: invalid timeout",
	ReasonDenied:      "denied by policy",
	ReasonBusy:        "busy: too many commands queued in dom0",
	ReasonInterrupted: "interrupted: dom0 stopped while the command ran; it was not run again",
	ReasonInternal:    "dom0 could not run the command",
}

// String is the one-line message the client prints.
func (r Reason) String() string {
	if r < reasonEnd {
		return reasonText[r]
	}
	return fmt.Sprintf("reason %d", uint8(r))
}

// Result flags.
const (
	FlagStdoutTruncated uint8 = 1 << iota
	FlagStderrTruncated
	flagsAll = FlagStdoutTruncated | FlagStderrTruncated
)

// Result is the one and only answer to a command. dom0 sends it again, the
// same, when the VM hands the command in again before it has acknowledged
// it (Ack).
type Result struct {
	ID     ID
	Status Status
	Code   uint8 // exit code for Exited
	Flags  uint8
	Reason Reason // for Refused
	// DurationMS is the run time in dom0.
	DurationMS uint32
	// Detail adds printable ASCII context to Reason (never VM-supplied text).
	Detail string
}

func (Hello) Type() Type  { return TypeHello }
func (Submit) Type() Type { return TypeSubmit }
func (Output) Type() Type { return TypeOutput }
func (Result) Type() Type { return TypeResult }
func (Sync) Type() Type   { return TypeSync }
func (Ack) Type() Type    { return TypeAck }

func (Sync) appendPayload(b []byte) []byte { return b }

func (m Ack) appendPayload(b []byte) []byte { return appendID(b, m.ID) }

func (m Hello) appendPayload(b []byte) []byte {
	b = append(b, helloMagic[:]...)
	b = binary.BigEndian.AppendUint16(b, m.Version)
	b = append(b, byte(len(m.VM)))
	return append(b, m.VM...)
}

func (m Submit) appendPayload(b []byte) []byte {
	b = appendID(b, m.ID)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Time))
	b = binary.BigEndian.AppendUint32(b, m.Timeout)
	b = append(b, m.MAC[:]...)
	return append(b, m.Body...)
}

func (m Output) appendPayload(b []byte) []byte {
	b = appendID(b, m.ID)
	b = append(b, byte(m.Stream))
	return append(b, m.Data...)
}

func (m Result) appendPayload(b []byte) []byte {
	b = appendID(b, m.ID)
	b = append(b, byte(m.Status), m.Code, m.Flags, byte(m.Reason))
	b = binary.BigEndian.AppendUint32(b, m.DurationMS)
	b = append(b, byte(len(m.Detail)))
	return append(b, m.Detail...)
}

func appendID(b []byte, id ID) []byte {
	b = append(b, byte(len(id)))
	return append(b, id...)
}

// Encode returns m as a frame, or an error if m is not something Decode would
// accept (so a bug on our side never puts a bad frame on the wire).
func Encode(m Message) ([]byte, error) {
	b := make([]byte, headerSize, 64)
	b[0] = byte(m.Type())
	b = m.appendPayload(b)
	binary.BigEndian.PutUint32(b[1:headerSize], uint32(len(b)-headerSize))
	if _, err := decodePayload(m.Type(), b[headerSize:]); err != nil {
		return nil, fmt.Errorf("encode %T: %w", m, err)
	}
	return b, nil
}

// ReadFrame reads one frame from r and decodes it. The length is checked
// against the type's limit before the payload is read. io.EOF is returned
// only at a clean frame boundary.
func ReadFrame(r io.Reader) (Message, error) {
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, violation("truncated frame header")
		}
		return nil, err
	}
	t := Type(h[0])
	max, ok := maxPayload(t)
	if !ok {
		return nil, violation("unknown frame type %d", h[0])
	}
	n := binary.BigEndian.Uint32(h[1:])
	if uint64(n) > uint64(max) {
		return nil, violation("frame type %d of %d bytes exceeds limit %d", t, n, max)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, violation("truncated frame payload")
		}
		return nil, err
	}
	return decodePayload(t, p)
}

// DecodeFrame decodes exactly one frame that fills b.
func DecodeFrame(b []byte) (Message, error) {
	if len(b) < headerSize {
		return nil, violation("short frame")
	}
	n := binary.BigEndian.Uint32(b[1:headerSize])
	if uint64(n) != uint64(len(b)-headerSize) {
		return nil, violation("length %d does not match %d payload bytes", n, len(b)-headerSize)
	}
	return ReadFrame(bytesReader(b))
}

type reader struct{ b []byte }

func bytesReader(b []byte) *reader { return &reader{b} }

func (r *reader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// cursor reads fields from a payload; the first failure sticks.
type cursor struct {
	b   []byte
	err error
}

func (c *cursor) take(n int, what string) []byte {
	if c.err != nil {
		return nil
	}
	if n > len(c.b) {
		c.err = violation("%s: %d bytes needed, %d left", what, n, len(c.b))
		return nil
	}
	v := c.b[:n:n]
	c.b = c.b[n:]
	return v
}

func (c *cursor) u8(what string) uint8 {
	if v := c.take(1, what); v != nil {
		return v[0]
	}
	return 0
}

func (c *cursor) id() ID {
	n := int(c.u8("id length"))
	raw := c.take(n, "id")
	if c.err != nil {
		return ""
	}
	id, err := ParseID(string(raw))
	if err != nil {
		c.err = fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return id
}

func (c *cursor) end() error {
	if c.err == nil && len(c.b) != 0 {
		c.err = violation("%d trailing bytes", len(c.b))
	}
	return c.err
}

func decodePayload(t Type, p []byte) (Message, error) {
	c := &cursor{b: p}
	switch t {
	case TypeHello:
		var m Hello
		if magic := c.take(4, "magic"); c.err == nil && [4]byte(magic) != helloMagic {
			return nil, violation("bad hello magic")
		}
		if v := c.take(2, "version"); v != nil {
			m.Version = binary.BigEndian.Uint16(v)
		}
		m.VM = string(c.take(int(c.u8("name length")), "name"))
		if err := c.end(); err != nil {
			return nil, err
		}
		if m.VM != "" && !ValidVMName(m.VM) {
			return nil, violation("bad VM name in hello")
		}
		return m, nil
	case TypeSubmit:
		var m Submit
		m.ID = c.id()
		if v := c.take(8, "time"); v != nil {
			m.Time = int64(binary.BigEndian.Uint64(v))
		}
		if v := c.take(4, "timeout"); v != nil {
			m.Timeout = binary.BigEndian.Uint32(v)
		}
		if v := c.take(32, "mac"); v != nil {
			m.MAC = [32]byte(v)
		}
		if c.err != nil {
			return nil, c.err
		}
		if m.Time < 0 {
			return nil, violation("negative time")
		}
		if len(c.b) > MaxBody {
			return nil, violation("body of %d bytes exceeds %d", len(c.b), MaxBody)
		}
		m.Body = c.b
		return m, nil
	case TypeOutput:
		var m Output
		m.ID = c.id()
		m.Stream = Stream(c.u8("stream"))
		if c.err != nil {
			return nil, c.err
		}
		if m.Stream != Stdout && m.Stream != Stderr {
			return nil, violation("unknown stream %d", m.Stream)
		}
		if len(c.b) == 0 || len(c.b) > MaxChunk {
			return nil, violation("output chunk of %d bytes not in 1..%d", len(c.b), MaxChunk)
		}
		m.Data = c.b
		return m, nil
	case TypeSync:
		if err := c.end(); err != nil {
			return nil, err
		}
		return Sync{}, nil
	case TypeAck:
		var m Ack
		m.ID = c.id()
		if err := c.end(); err != nil {
			return nil, err
		}
		return m, nil
	case TypeResult:
		var m Result
		m.ID = c.id()
		m.Status = Status(c.u8("status"))
		m.Code = c.u8("code")
		m.Flags = c.u8("flags")
		m.Reason = Reason(c.u8("reason"))
		if v := c.take(4, "duration"); v != nil {
			m.DurationMS = binary.BigEndian.Uint32(v)
		}
		m.Detail = string(c.take(int(c.u8("detail length")), "detail"))
		if err := c.end(); err != nil {
			return nil, err
		}
		return m, m.check()
	}
	return nil, violation("unknown frame type %d", t)
}

func (m Result) check() error {
	switch m.Status {
	case Exited:
		if m.Reason != ReasonNone {
			return violation("exited result with a reason")
		}
	case TimedOut:
		if m.Reason != ReasonNone || m.Code != 124 {
			return violation("timeout result must have code 124 and no reason")
		}
	case Refused:
		if m.Reason == ReasonNone || m.Reason >= reasonEnd || m.Code != 255 || m.Flags != 0 {
			return violation("refusal needs a known reason, code 255, no flags")
		}
	default:
		return violation("unknown status %d", m.Status)
	}
	if m.Flags&^flagsAll != 0 {
		return violation("unknown flags 0x%02x", m.Flags)
	}
	if len(m.Detail) > MaxDetail {
		return violation("detail too long")
	}
	for i := 0; i < len(m.Detail); i++ {
		if m.Detail[i] < 0x20 || m.Detail[i] > 0x7e {
			return violation("detail is not printable ASCII")
		}
	}
	return nil
}

// Refusal returns the Result refusing id for r.
func Refusal(id ID, r Reason, detail string) Result {
	return Result{ID: id, Status: Refused, Code: 255, Reason: r, Detail: detail}
}

// ExitCode is the status the client exits with for res: the command's own
// code, 124 for a timeout, 255 when dom0 did not run it (as ssh does).
func (m Result) ExitCode() int {
	switch m.Status {
	case Exited:
		return int(m.Code)
	case TimedOut:
		return 124
	}
	return 255
}

// Conn is one end of a channel. Send is safe for concurrent use; Recv is not
// (one reader per channel) and returns only the frame types this end may
// receive.
type Conn struct {
	r      *bufio.Reader
	accept func(Type) bool
	mu     sync.Mutex
	w      io.Writer
}

// Side says which end of a channel a Conn is.
type Side int

// Sides.
const (
	Dom0Side Side = iota // receives Hello, Submit, Sync, Ack
	VMSide               // receives Hello, Output, Result
)

// NewConn returns a Conn reading r and writing w.
func NewConn(r io.Reader, w io.Writer, side Side) *Conn {
	accept := func(t Type) bool { return t == TypeHello || t == TypeSubmit || t == TypeSync || t == TypeAck }
	if side == VMSide {
		accept = func(t Type) bool { return t == TypeHello || t == TypeOutput || t == TypeResult }
	}
	return &Conn{r: bufio.NewReaderSize(r, 64<<10), w: w, accept: accept}
}

// Send writes one frame.
func (c *Conn) Send(m Message) error {
	b, err := Encode(m)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err = c.w.Write(b)
	return err
}

// Recv reads the next frame; a frame this side must not receive is a
// protocol violation.
func (c *Conn) Recv() (Message, error) {
	m, err := ReadFrame(c.r)
	if err != nil {
		return nil, err
	}
	if !c.accept(m.Type()) {
		return nil, violation("unexpected frame type %d", m.Type())
	}
	return m, nil
}
