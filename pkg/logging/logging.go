// Package logging sets up logrus once for every qubes-claw daemon: human text
// on a terminal, plain lines (journald adds the timestamp) or JSON under
// systemd, the level from config, and redaction of secrets in every line.
package logging

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
	"golang.org/x/term"

	"github.com/qubes-claw/qubes-claw/pkg/config"
)

// Config is the log section shared by every program's configuration.
type Config struct {
	Level  string      `mapstructure:"level" flag:"log-level" doc:"log level: trace, debug, info, warn, error"`
	Format string      `mapstructure:"format" flag:"log-format" doc:"log format: auto (text on a terminal, plain under systemd), text, plain, json"`
	File   config.Path `mapstructure:"file" doc:"also append log lines to this file (empty: none)"`
}

// Defaults returns the default log section.
func Defaults() Config { return Config{Level: "info", Format: "auto"} }

// Validate checks level and format.
func (c Config) Validate() error {
	if _, err := logrus.ParseLevel(c.Level); err != nil {
		return fmt.Errorf("log.level: %w", err)
	}
	switch c.Format {
	case "auto", "text", "plain", "json":
		return nil
	}
	return fmt.Errorf("log.format: %q is not one of auto, text, plain, json", c.Format)
}

// Logger is a logrus logger whose every line passes through a redactor.
type Logger struct {
	*logrus.Logger
	red  *redactor
	file io.Closer
}

// New builds the logger writing to w (normally stderr).
func New(c Config, w io.Writer) (*Logger, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	lvl, _ := logrus.ParseLevel(c.Level)
	l := logrus.New()
	l.SetLevel(lvl)
	red := &redactor{}
	out := &Logger{Logger: l, red: red}
	l.SetFormatter(&redactingFormatter{inner: formatter(c.Format, w), red: red})
	if c.File != "" {
		f, err := os.OpenFile(string(c.File), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("log file: %w", err)
		}
		out.file = f
		w = io.MultiWriter(w, f)
	}
	l.SetOutput(w)
	return out, nil
}

// Redact registers a secret value (a key, a token) that must never appear in
// a log line; occurrences are replaced. Values shorter than 8 bytes are
// ignored: masking them would mangle ordinary words.
func (l *Logger) Redact(secret string) { l.red.add(secret) }

// Close closes the log file, if any.
func (l *Logger) Close() error {
	if l.file != nil {
		return l.file.Close()
	}
	return nil
}

// Discard returns a logger that writes nothing, for tests and library defaults.
func Discard() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func formatter(format string, w io.Writer) logrus.Formatter {
	if format == "auto" {
		switch {
		case isTerminal(w):
			format = "text"
		case os.Getenv("JOURNAL_STREAM") != "" || os.Getenv("INVOCATION_ID") != "":
			// Under systemd journald timestamps every line itself.
			format = "plain"
		default:
			format = "text"
		}
	}
	switch format {
	case "json":
		return &logrus.JSONFormatter{}
	case "plain":
		return &logrus.TextFormatter{DisableTimestamp: true, DisableColors: true, DisableQuote: false}
	}
	return &logrus.TextFormatter{FullTimestamp: true, ForceColors: isTerminal(w)}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// secretField reports whether a field name suggests a secret value.
func secretField(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"key", "token", "secret", "password", "passwd", "authorization", "hmac", "credential", "cookie"} {
		if strings.Contains(n, s) && !strings.HasSuffix(n, "_fingerprint") && !strings.HasSuffix(n, "fingerprint") {
			return true
		}
	}
	return false
}

type redactor struct {
	mu     sync.RWMutex
	values [][]byte
}

func (r *redactor) add(s string) {
	if len(s) < 8 {
		return
	}
	r.mu.Lock()
	r.values = append(r.values, []byte(s))
	r.mu.Unlock()
}

func (r *redactor) scrub(b []byte) []byte {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, v := range r.values {
		if bytes.Contains(b, v) {
			b = bytes.ReplaceAll(b, v, []byte("[redacted]"))
		}
	}
	return b
}

// redactingFormatter masks secret-looking fields before formatting and known
// secret values after, so neither a field nor a message can carry one out.
type redactingFormatter struct {
	inner logrus.Formatter
	red   *redactor
}

func (f *redactingFormatter) Format(e *logrus.Entry) ([]byte, error) {
	masked := false
	for k := range e.Data {
		if secretField(k) {
			masked = true
			break
		}
	}
	if masked {
		data := make(logrus.Fields, len(e.Data))
		for k, v := range e.Data {
			if secretField(k) {
				v = "[redacted]"
			}
			data[k] = v
		}
		c := *e // shallow copy: message, level, time and buffer stay as they are
		c.Data = data
		e = &c
	}
	b, err := f.inner.Format(e)
	if err != nil {
		return nil, err
	}
	return f.red.scrub(b), nil
}
