package logging

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/qubes-claw/qubes-claw/pkg/config"
)

// TestSecretsNeverLogged drives every way a key or token could reach a log
// line and checks the output in each format.
func TestSecretsNeverLogged(t *testing.T) {
	const key = "3f9a1c0e8b7d6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa998877"
	const token = "tok-5c4b3a29181706f5e4d3c2b1a0"
	cases := []struct {
		name string
		log  func(l *Logger)
	}{
		{"field named key", func(l *Logger) { l.WithField("key", key).Info("authorized") }},
		{"field named auth_token", func(l *Logger) { l.WithField("auth_token", token).Warn("x") }},
		{"field named HMAC", func(l *Logger) { l.WithField("HMAC", "anything-goes-here").Info("x") }},
		{"registered value in message", func(l *Logger) { l.Infof("command with token %s rejected", token) }},
		{"registered value in error field", func(l *Logger) {
			l.WithError(fmt.Errorf("bad key %s: %w", key, errors.New("mismatch"))).Error("auth failed")
		}},
		{"registered value in unrelated field", func(l *Logger) { l.WithField("cmd", "echo "+key).Info("exec") }},
		{"config.Secret value", func(l *Logger) { l.WithField("upstream", config.Secret(token)).Info("x") }},
		{"config.Secret in struct", func(l *Logger) {
			l.Infof("cfg %+v", struct{ APIKey config.Secret }{config.Secret(token)})
		}},
	}
	for _, format := range []string{"text", "plain", "json"} {
		for _, tc := range cases {
			t.Run(format+"/"+tc.name, func(t *testing.T) {
				var buf bytes.Buffer
				l, err := New(Config{Level: "debug", Format: format}, &buf)
				if err != nil {
					t.Fatal(err)
				}
				l.Redact(key)
				l.Redact(token)
				tc.log(l)
				out := buf.String()
				if out == "" {
					t.Fatal("nothing logged")
				}
				for _, s := range []string{key, token, "anything-goes-here", key[:16], token[4:20]} {
					if strings.Contains(out, s) {
						t.Errorf("secret %q reached the log: %s", s, out)
					}
				}
				if !strings.Contains(out, "[redacted]") {
					t.Errorf("expected a redaction marker: %s", out)
				}
			})
		}
	}
}

func TestFingerprintsStayVisible(t *testing.T) {
	var buf bytes.Buffer
	l, _ := New(Config{Level: "info", Format: "plain"}, &buf)
	l.WithField("key_fingerprint", "SHA256:abcd").Info("authorized")
	if !strings.Contains(buf.String(), "SHA256:abcd") {
		t.Errorf("fingerprints are not secrets: %s", buf.String())
	}
}

func TestFormatsAndLevels(t *testing.T) {
	tests := []struct {
		cfg      Config
		wantErr  bool
		contains string
		absent   string
	}{
		{cfg: Config{Level: "info", Format: "json"}, contains: `"msg":"hello"`},
		{cfg: Config{Level: "info", Format: "plain"}, contains: "msg=hello", absent: "time="},
		{cfg: Config{Level: "info", Format: "text"}, contains: "time="},
		{cfg: Config{Level: "loud", Format: "text"}, wantErr: true},
		{cfg: Config{Level: "info", Format: "xml"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.cfg.Level+"/"+tt.cfg.Format, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := New(tt.cfg, &buf)
			if tt.wantErr {
				if err == nil {
					t.Fatal("want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l.Debug("hidden")
			l.Info("hello")
			out := buf.String()
			if strings.Contains(out, "hidden") {
				t.Error("debug line logged at info level")
			}
			if !strings.Contains(out, tt.contains) || (tt.absent != "" && strings.Contains(out, tt.absent)) {
				t.Errorf("output %q", out)
			}
		})
	}
}

func TestAutoFormatUnderSystemd(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "8:1234")
	var buf bytes.Buffer
	l, _ := New(Config{Level: "info", Format: "auto"}, &buf)
	l.Info("x")
	if strings.Contains(buf.String(), "time=") {
		t.Errorf("journald adds timestamps; got %q", buf.String())
	}
	_ = logrus.InfoLevel
}
