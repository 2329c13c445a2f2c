// Package sse reads Server-Sent Events streams from upstream APIs (OpenAI and
// Ollama send unnamed data events ending with "[DONE]"; Anthropic names each
// event) and writes the frames the proxy sends its clients.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxLine bounds one line of an upstream stream, so a broken upstream cannot
// make the proxy buffer without limit. Tool-call arguments arrive in
// fragments, so real events stay far below it.
const MaxLine = 4 << 20

// ErrLineTooLong is returned for a line longer than MaxLine.
var ErrLineTooLong = errors.New("sse: line too long")

// Event is one dispatched event.
type Event struct {
	Name string // the event: field, "" for unnamed events
	Data []byte // data: lines joined by "\n"
}

// Reader reads events.
type Reader struct {
	r *bufio.Reader
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 32<<10)} }

// Next returns the next event with data. Comments, ids, retry fields and
// events without data are skipped. At the end of the stream it returns
// io.EOF, or io.ErrUnexpectedEOF if an event was cut off.
func (r *Reader) Next() (Event, error) {
	var ev Event
	var data [][]byte
	for {
		line, err := r.line()
		if err == io.EOF && len(line) == 0 {
			if len(data) > 0 || ev.Name != "" {
				return Event{}, io.ErrUnexpectedEOF
			}
			return Event{}, io.EOF
		}
		if err != nil && err != io.EOF {
			return Event{}, err
		}
		if len(line) == 0 {
			if len(data) > 0 {
				ev.Data = bytes.Join(data, []byte("\n"))
				return ev, nil
			}
			ev = Event{}
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "":
			// a comment (keep-alive)
		case "event":
			ev.Name = string(value)
		case "data":
			data = append(data, append([]byte(nil), value...))
		}
		if err == io.EOF {
			// An event is dispatched only by a blank line; one cut off by
			// the end of the stream is incomplete (SSE discards it).
			if len(data) > 0 || ev.Name != "" {
				return Event{}, io.ErrUnexpectedEOF
			}
			return Event{}, io.EOF
		}
	}
}

// line reads one line without its terminator (\n, \r\n or \r-less).
func (r *Reader) line() ([]byte, error) {
	var buf []byte
	for {
		frag, err := r.r.ReadSlice('\n')
		if len(buf)+len(frag) > MaxLine {
			return nil, ErrLineTooLong
		}
		buf = append(buf, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		buf = bytes.TrimSuffix(buf, []byte("\n"))
		buf = bytes.TrimSuffix(buf, []byte("\r"))
		if err != nil && err != io.EOF {
			return nil, err
		}
		return buf, err
	}
}

// Done is the data of OpenAI's terminating event.
var Done = []byte("[DONE]")

// WriteData writes one unnamed data event.
func WriteData(w io.Writer, data []byte) error {
	if bytes.ContainsAny(data, "\r\n") {
		return fmt.Errorf("sse: data must be a single line")
	}
	_, err := fmt.Fprintf(w, "data: %s\n\n", data)
	return err
}

// WriteComment writes a comment line, which parsers ignore: a heartbeat.
func WriteComment(w io.Writer, text string) error {
	_, err := fmt.Fprintf(w, ": %s\n\n", text)
	return err
}
