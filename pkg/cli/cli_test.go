package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		args     []string
		wantCode int
		wantErr  string
	}{
		{name: "ok", wantCode: 0},
		{name: "plain error", err: errors.New("boom"), wantCode: 1, wantErr: "prog: boom\n"},
		{name: "wrapped cli error", err: fmt.Errorf("ctx: %w", Exit(255, "rejected: binary content")), wantCode: 255, wantErr: "prog: rejected: binary content\n"},
		{name: "silent status", err: Status(42), wantCode: 42, wantErr: ""},
		{name: "usage", err: Usagef("need a command"), wantCode: 2, wantErr: "Run 'prog --help'"},
		{name: "bad flag", args: []string{"--nope"}, wantCode: 2, wantErr: "unknown flag"},
		{name: "canceled", err: fmt.Errorf("wait: %w", context.Canceled), wantCode: 130, wantErr: "interrupted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := &cobra.Command{Use: "prog", RunE: func(*cobra.Command, []string) error { return tt.err }}
			var out, errb bytes.Buffer
			code := Run(cmd, tt.args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
			if code != tt.wantCode {
				t.Errorf("code = %d, want %d", code, tt.wantCode)
			}
			if tt.wantErr == "" && errb.Len() != 0 || !strings.Contains(errb.String(), tt.wantErr) {
				t.Errorf("stderr = %q, want %q", errb.String(), tt.wantErr)
			}
		})
	}
}

func TestVersionFlag(t *testing.T) {
	cmd := &cobra.Command{Use: "prog", Run: func(*cobra.Command, []string) {}}
	var out bytes.Buffer
	if code := Run(cmd, []string{"--version"}, Stdio{In: strings.NewReader(""), Out: &out, Err: &out}); code != 0 {
		t.Fatalf("code %d", code)
	}
	if !strings.Contains(out.String(), "prog version") {
		t.Errorf("got %q", out.String())
	}
}
