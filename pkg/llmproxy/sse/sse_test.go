package sse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Event
		wantErr error
	}{
		{name: "openai style", in: "data: {\"a\":1}\n\ndata: [DONE]\n\n",
			want: []Event{{Data: []byte(`{"a":1}`)}, {Data: Done}}},
		{name: "named events with crlf", in: "event: ping\r\ndata: {}\r\n\r\nevent: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n",
			want: []Event{{Name: "ping", Data: []byte("{}")}, {Name: "message_stop", Data: []byte(`{"type":"message_stop"}`)}}},
		{name: "comments and empty events skipped", in: ": keepalive\n\nevent: x\n\nid: 3\ndata: y\n\n",
			want: []Event{{Data: []byte("y")}}},
		{name: "multi-line data joined", in: "data: a\ndata: b\n\n", want: []Event{{Data: []byte("a\nb")}}},
		{name: "no space after colon", in: "data:z\n\n", want: []Event{{Data: []byte("z")}}},
		{name: "last event without blank line", in: "data: y\n\ndata: z", want: []Event{{Data: []byte("y")}}, wantErr: io.ErrUnexpectedEOF},
		{name: "cut mid event", in: "data: z\n", want: nil, wantErr: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.in))
			var got []Event
			var err error
			for {
				var ev Event
				ev, err = r.Next()
				if err != nil {
					break
				}
				got = append(got, ev)
			}
			wantErr := tt.wantErr
			if wantErr == nil {
				wantErr = io.EOF
			}
			if !errors.Is(err, wantErr) {
				t.Fatalf("end error = %v, want %v", err, wantErr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d events %q, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if got[i].Name != tt.want[i].Name || !bytes.Equal(got[i].Data, tt.want[i].Data) {
					t.Errorf("event %d = %q/%q, want %q/%q", i, got[i].Name, got[i].Data, tt.want[i].Name, tt.want[i].Data)
				}
			}
		})
	}
}

func TestLineLimit(t *testing.T) {
	in := "data: " + strings.Repeat("x", MaxLine+1) + "\n\n"
	if _, err := NewReader(strings.NewReader(in)).Next(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("err = %v, want ErrLineTooLong", err)
	}
}

func TestWriteData(t *testing.T) {
	var b bytes.Buffer
	if err := WriteData(&b, []byte("a\nb")); err == nil {
		t.Error("a newline in data must be refused: it would split the frame")
	}
	if err := WriteData(&b, []byte(`{"x":1}`)); err != nil || b.String() != "data: {\"x\":1}\n\n" {
		t.Errorf("got %q, %v", b.String(), err)
	}
}
