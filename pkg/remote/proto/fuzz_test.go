package proto

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzDecodeFrame: no input panics or allocates beyond the limits; whatever
// decodes re-encodes to the same bytes (one spelling per message) and is a
// type the decoder is allowed to produce.
func FuzzDecodeFrame(f *testing.F) {
	for _, m := range []Message{
		Hello{Version: Version, VM: "work"},
		Submit{ID: "20260101-120000-1-ab", Time: 1, Timeout: 300, Body: []byte("hostname\n")},
		Output{ID: "x", Stream: Stdout, Data: []byte{0, 1, 2, 255}},
		Result{ID: "x", Status: Exited, Code: 1, Flags: FlagStderrTruncated},
		Refusal("x", ReasonReplay, "seen"),
		Sync{},
		Ack{ID: "20260101-120000-1-ab"},
	} {
		b, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{byte(TypeSubmit), 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{byte(TypeHello), 0, 0, 0, 7, 'Q', 'V', 'M', 'R', 0, 2, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for {
			m, err := ReadFrame(r)
			if err == io.EOF {
				return
			}
			if err != nil {
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("non-protocol error from an in-memory reader: %v", err)
				}
				return
			}
			b, err := Encode(m)
			if err != nil {
				t.Fatalf("decoded %T does not re-encode: %v", m, err)
			}
			m2, err := DecodeFrame(b)
			if err != nil {
				t.Fatalf("re-encoded frame does not decode: %v", err)
			}
			if b2, _ := Encode(m2); !bytes.Equal(b, b2) {
				t.Fatalf("%T: encoding not stable", m)
			}
		}
	})
}

// FuzzParseID: accepted ids are safe file names and survive the frame
// encoding.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{"20260101-120000-1234-abcd1234", "ping-1-2", "a", "..", "a/b", "x.auth", "-x", "", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			if !errors.Is(err, ErrBadID) {
				t.Fatalf("error does not wrap ErrBadID: %v", err)
			}
			return
		}
		if string(id) != s || len(s) > MaxIDLen || s == "." || s == ".." || bytes.ContainsAny([]byte(s), "/.\x00 \n") || s[0] == '-' {
			t.Fatalf("unsafe id accepted: %q", s)
		}
		b, err := Encode(Result{ID: id, Status: Exited})
		if err != nil {
			t.Fatalf("valid id %q does not encode: %v", s, err)
		}
		if _, err := DecodeFrame(b); err != nil {
			t.Fatalf("valid id %q does not decode: %v", s, err)
		}
	})
}

// FuzzParseToken: a parsed token prints back to exactly its input.
func FuzzParseToken(f *testing.F) {
	f.Add("v2.1700000000.300." + "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
	f.Add("v2.0.0." + "ab00000000000000000000000000000000000000000000000000000000000000\n")
	f.Add("v1.1.1.xx")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("error does not wrap ErrBadToken: %v", err)
			}
			return
		}
		if got := tok.String(); got != s && got+"\n" != s {
			t.Fatalf("ParseToken(%q) prints back as %q", s, got)
		}
	})
}

// FuzzValidateBody: an accepted body has no forbidden byte.
func FuzzValidateBody(f *testing.F) {
	f.Add([]byte("hostname\n"))
	f.Add([]byte("a\x00"))
	f.Add([]byte(" \t"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if ValidateBody(b, 1<<10) != nil {
			return
		}
		if len(b) > 1<<10 || len(bytes.TrimSpace(b)) == 0 {
			t.Fatalf("accepted empty or oversized body %q", b)
		}
		for _, c := range b {
			if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f {
				t.Fatalf("accepted byte 0x%02x", c)
			}
		}
	})
}
