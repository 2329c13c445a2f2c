package proto

import "fmt"

// ValidateBody checks a command body before anything else looks at it: not
// empty (whitespace only counts as empty), at most max bytes, and text: no NUL,
// no control byte other than tab, newline and carriage return, no DEL. Bytes
// ≥ 0x80 pass, so UTF-8 commands work.
func ValidateBody(b []byte, max int) error {
	if len(b) > max {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), max)
	}
	blank := true
	for i, c := range b {
		switch {
		case c == '\t' || c == '\n' || c == '\r' || c == ' ':
		case c < 0x20 || c == 0x7f:
			return fmt.Errorf("%w: byte 0x%02x at offset %d", ErrBinary, c, i)
		default:
			blank = false
		}
	}
	if blank {
		return ErrEmpty
	}
	return nil
}
