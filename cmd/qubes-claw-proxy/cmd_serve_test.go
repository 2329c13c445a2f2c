package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
)

func run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(newRootCmd(), args, cli.Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String() + errb.String()
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "proxy.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServeRefusesBadConfig(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("HOME", t.TempDir())
	tests := []struct {
		name     string
		config   string
		args     []string
		wantCode int
		wantMsg  []string
	}{
		{name: "missing key names the key and variable", config: "provider: openai\n",
			wantCode: exitConfig, wantMsg: []string{"openai.api_key", "$OPENAI_API_KEY"}},
		{name: "unknown provider", config: "provider: gemini\n",
			wantCode: exitConfig, wantMsg: []string{`unknown provider "gemini"`, "openai, anthropic, ollama, cursor"}},
		{name: "unknown provider from flag", config: "provider: openai\n", args: []string{"--provider", "bard"},
			wantCode: exitConfig, wantMsg: []string{`"bard"`}},
		{name: "unknown key", config: "provdier: openai\n", wantCode: exitConfig, wantMsg: []string{`"provdier"`}},
		{name: "public address refused", config: "listen: 0.0.0.0:32125\n", wantCode: exitConfig, wantMsg: []string{"allow_non_loopback"}},
		{name: "bad invocation", config: "", args: []string{"extra"}, wantCode: cli.ExitUsage, wantMsg: []string{"no arguments"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"serve", "--config", writeConfig(t, tt.config)}, tt.args...)
			code, out := run(t, args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; output %q", code, tt.wantCode, out)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(out, m) {
					t.Errorf("output %q does not mention %q", out, m)
				}
			}
		})
	}
}
