package proto

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseID(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"20260101-120000-1234-abcd1234", true}, // 1.x shape
		{"ping-1700000000000000000-42", true},
		{"a", true},
		{"A_b-9", true},
		{strings.Repeat("x", MaxIDLen), true},
		{strings.Repeat("x", MaxIDLen+1), false},
		{"", false},
		{"-rf", false},
		{"_x", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"../etc", false},
		{"x.auth", false},
		{"a b", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"é", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			id, err := ParseID(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("ParseID(%q) = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadID) {
				t.Errorf("error %v does not wrap ErrBadID", err)
			}
			if err == nil && string(id) != tt.in {
				t.Errorf("id %q != %q", id, tt.in)
			}
		})
	}
}

func TestNewIDParses(t *testing.T) {
	seen := map[ID]bool{}
	for i := 0; i < 100; i++ {
		id := NewID(time.Unix(1_700_000_000, 0), 123456789)
		if _, err := ParseID(string(id)); err != nil {
			t.Fatalf("NewID gave %q: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestValidVMName(t *testing.T) {
	for name, ok := range map[string]bool{
		"work": true, "sys-net": true, "a.b_c-1": true, "W": true,
		"": false, "1vm": false, "-x": false, "a b": false, "a/b": false, "a\n": false,
		strings.Repeat("v", 31): true, strings.Repeat("v", 32): false,
	} {
		if ValidVMName(name) != ok {
			t.Errorf("ValidVMName(%q) = %v", name, !ok)
		}
	}
}

func TestValidateBody(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want error
	}{
		{"plain", "hostname\n", 100, nil},
		{"tabs and crlf", "echo\ta\r\n", 100, nil},
		{"utf-8", "echo héllo ✓\n", 100, nil},
		{"at limit", "abcd", 4, nil},
		{"over limit", "abcde", 4, ErrTooLarge},
		{"empty", "", 100, ErrEmpty},
		{"whitespace only", " \n\t\r\n", 100, ErrEmpty},
		{"nul", "echo a\x00b", 100, ErrBinary},
		{"escape", "echo \x1b[31m", 100, ErrBinary},
		{"del", "echo \x7f", 100, ErrBinary},
		{"bell", "\a", 100, ErrBinary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateBody([]byte(tt.in), tt.max)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("ValidateBody(%q) = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

var testKey = bytes.Repeat([]byte{0x42}, KeySize)

func TestTokenBindsEveryClaim(t *testing.T) {
	base := NewClaims("work", "20260101-120000-1-aa", time.Unix(1_700_000_000, 0), 300, []byte("hostname\n"))
	mac, err := Sign(testKey, base)
	if err != nil {
		t.Fatal(err)
	}
	if !Verify(testKey, base, mac) {
		t.Fatal("a token must verify with its own claims")
	}
	otherKey := bytes.Repeat([]byte{0x43}, KeySize)
	changes := map[string]func(c *Claims){
		"vm":      func(c *Claims) { c.VM = "work2" },
		"id":      func(c *Claims) { c.ID = "20260101-120000-1-ab" },
		"time":    func(c *Claims) { c.Time++ },
		"timeout": func(c *Claims) { c.Timeout = 301 },
		"body":    func(c *Claims) { c.BodySHA256 = sha256.Sum256([]byte("rm -rf /\n")) },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			c := base
			change(&c)
			if Verify(testKey, c, mac) {
				t.Errorf("token still verifies after changing %s", name)
			}
		})
	}
	if Verify(otherKey, base, mac) {
		t.Error("token verifies under another key")
	}
	if Verify(testKey[:16], base, mac) {
		t.Error("short key accepted")
	}
	bad := base
	bad.VM = "a\nvm:b"
	if _, err := Sign(testKey, bad); err == nil {
		t.Error("VM name with a newline must not be signed")
	}
}

func TestTokenString(t *testing.T) {
	tok := Token{Time: 1_700_000_000, Timeout: 300}
	tok.MAC[0], tok.MAC[31] = 0xab, 0x01
	s := tok.String()
	got, err := ParseToken(s + "\n")
	if err != nil || got != tok {
		t.Fatalf("round trip %q: %+v, %v", s, got, err)
	}
	mac := strings.Repeat("ab", 32)
	for _, bad := range []string{
		"", "v1.1.2." + mac, "v2.1.2", "v2.01.2." + mac, "v2.-1.2." + mac, "v2.+1.2." + mac,
		"v2.1.4294967296." + mac, "v2.1.2." + strings.ToUpper(mac), "v2.1.2." + mac[:62],
		"v2.1.2." + mac + "\n\n", " v2.1.2." + mac, "v2.1.2." + mac + ".x", "v2.1. 2." + mac,
		"v2.9223372036854775808.2." + mac,
	} {
		if _, err := ParseToken(bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("ParseToken(%q) = %v, want ErrBadToken", bad, err)
		}
	}
}

func TestCheckTime(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	w := 300 * time.Second
	for d, ok := range map[int64]bool{0: true, 300: true, -300: true, 301: false, -301: false, -600: false} {
		if CheckTime(now.Unix()+d, now, w) != ok {
			t.Errorf("offset %d: want %v", d, ok)
		}
	}
}

func frame(t Type, payload []byte) []byte {
	b := []byte{byte(t), 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	return append(b, payload...)
}

func TestFrameRoundTrip(t *testing.T) {
	all256 := make([]byte, 256)
	for i := range all256 {
		all256[i] = byte(i)
	}
	msgs := []Message{
		Hello{Version: Version, VM: "work"},
		Hello{Version: Version},
		Submit{ID: "x1", Time: 1_700_000_000, Timeout: 5, MAC: [32]byte{1, 2, 3}, Body: []byte("echo hi\n")},
		Submit{ID: "x2", Body: nil},
		Output{ID: "x1", Stream: Stderr, Data: all256},
		Result{ID: "x1", Status: Exited, Code: 3, Flags: FlagStdoutTruncated, DurationMS: 12},
		Result{ID: "x1", Status: TimedOut, Code: 124},
		Refusal("x1", ReasonDenied, "rule 3"),
		Sync{},
		Ack{ID: "x1"},
	}
	for _, m := range msgs {
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("Encode(%+v): %v", m, err)
		}
		got, err := DecodeFrame(b)
		if err != nil {
			t.Fatalf("DecodeFrame(%+v): %v", m, err)
		}
		b2, _ := Encode(got)
		if !bytes.Equal(b, b2) {
			t.Errorf("round trip of %T changed the bytes", m)
		}
	}
}

func TestFrameRejects(t *testing.T) {
	okSubmit, _ := Encode(Submit{ID: "x", Body: []byte("true")})
	tests := []struct {
		name string
		in   []byte
	}{
		{"unknown type", frame(9, nil)},
		{"type zero", frame(0, nil)},
		{"truncated header", []byte{byte(TypeHello), 0, 0}},
		{"truncated payload", okSubmit[:len(okSubmit)-1]},
		{"oversized submit header", []byte{byte(TypeSubmit), 0xff, 0xff, 0xff, 0xff}},
		{"oversized hello", frame(TypeHello, make([]byte, 100))},
		{"bad magic", frame(TypeHello, []byte("QVMX\x00\x02\x00"))},
		{"hello trailing", frame(TypeHello, []byte("QVMR\x00\x02\x00z"))},
		{"hello bad name", frame(TypeHello, []byte("QVMR\x00\x02\x03a/b"))},
		{"submit bad id", frame(TypeSubmit, append([]byte{3, '.', '.', '/'}, make([]byte, 44)...))},
		{"submit empty id", frame(TypeSubmit, append([]byte{0}, make([]byte, 44)...))},
		{"submit short", frame(TypeSubmit, []byte{1, 'x', 0, 0})},
		{"submit negative time", frame(TypeSubmit, append([]byte{1, 'x', 0x80}, make([]byte, 43)...))},
		{"output bad stream", frame(TypeOutput, []byte{1, 'x', 3, 'a'})},
		{"output empty", frame(TypeOutput, []byte{1, 'x', 1})},
		{"output too big", frame(TypeOutput, append([]byte{1, 'x', 1}, make([]byte, MaxChunk+1)...))},
		{"result unknown status", frame(TypeResult, []byte{1, 'x', 9, 0, 0, 0, 0, 0, 0, 0, 0})},
		{"result refused without reason", frame(TypeResult, []byte{1, 'x', 3, 255, 0, 0, 0, 0, 0, 0, 0})},
		{"result unknown reason", frame(TypeResult, []byte{1, 'x', 3, 255, 0, 200, 0, 0, 0, 0, 0})},
		{"result timeout code", frame(TypeResult, []byte{1, 'x', 2, 1, 0, 0, 0, 0, 0, 0, 0})},
		{"result unknown flag", frame(TypeResult, []byte{1, 'x', 1, 0, 8, 0, 0, 0, 0, 0, 0})},
		{"result detail control", frame(TypeResult, []byte{1, 'x', 1, 0, 0, 0, 0, 0, 0, 0, 1, '\n'})},
		{"sync with payload", frame(TypeSync, []byte{0})},
		{"ack empty", frame(TypeAck, nil)},
		{"ack bad id", frame(TypeAck, []byte{3, '.', '.', '/'})},
		{"ack trailing", frame(TypeAck, []byte{1, 'x', 0})},
		{"ack too long", frame(TypeAck, append([]byte{MaxIDLen + 1}, make([]byte, MaxIDLen+1)...))},
		{"result trailing", frame(TypeResult, []byte{1, 'x', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFrame(bytes.NewReader(tt.in))
			if !errors.Is(err, ErrProtocol) {
				t.Errorf("ReadFrame = %v, want ErrProtocol", err)
			}
		})
	}
	if _, err := ReadFrame(bytes.NewReader(nil)); err != io.EOF {
		t.Errorf("empty stream: %v, want io.EOF", err)
	}
}

// An attacker announcing a huge frame is cut off at the header: the reader
// must not go on to consume (or allocate) the announced payload.
func TestOversizedFrameCutOffAtHeader(t *testing.T) {
	src := &countingReader{}
	in := io.MultiReader(bytes.NewReader([]byte{byte(TypeOutput), 0x7f, 0xff, 0xff, 0xff}), src)
	if _, err := ReadFrame(in); !errors.Is(err, ErrProtocol) {
		t.Fatalf("ReadFrame = %v, want ErrProtocol", err)
	}
	if src.n != 0 {
		t.Errorf("read %d payload bytes of an oversized frame", src.n)
	}
}

type countingReader struct{ n int }

func (r *countingReader) Read(p []byte) (int, error) { r.n += len(p); return len(p), nil }

func TestConnDirections(t *testing.T) {
	var buf bytes.Buffer
	vm := NewConn(&buf, &buf, VMSide)
	if err := vm.Send(Submit{ID: "a", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Recv(); !errors.Is(err, ErrProtocol) {
		t.Errorf("VM side accepted a Submit: %v", err)
	}
	dom0 := NewConn(&buf, &buf, Dom0Side)
	if err := dom0.Send(Output{ID: "a", Stream: Stdout, Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := dom0.Recv(); !errors.Is(err, ErrProtocol) {
		t.Errorf("dom0 side accepted an Output: %v", err)
	}
	if err := vm.Send(Ack{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if m, err := dom0.Recv(); err != nil || m != (Ack{ID: "a"}) {
		t.Errorf("dom0 side: %v %v, want the Ack", m, err)
	}
	if err := dom0.Send(Ack{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Recv(); !errors.Is(err, ErrProtocol) {
		t.Errorf("VM side accepted an Ack: %v", err)
	}
	if err := dom0.Send(Output{ID: "a", Stream: Stdout}); err == nil {
		t.Error("Send must refuse an empty output chunk")
	}
	if err := dom0.Send(Result{ID: "a/b", Status: Exited}); err == nil {
		t.Error("Send must refuse a bad id")
	}
}

func TestResultExitCode(t *testing.T) {
	if c := (Result{Status: Exited, Code: 7}).ExitCode(); c != 7 {
		t.Errorf("exited: %d", c)
	}
	if c := (Result{Status: TimedOut, Code: 124}).ExitCode(); c != 124 {
		t.Errorf("timeout: %d", c)
	}
	if c := Refusal("x", ReasonAuth, "").ExitCode(); c != 255 {
		t.Errorf("refused: %d", c)
	}
	for r := ReasonAuth; r < reasonEnd; r++ {
		if r.String() == "" {
			t.Errorf("reason %d has no text", r)
		}
	}
}
