package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/openclaw"
)

func TestOpenclawConfig(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("OPENCLAW_CONFIG_PATH", "")
	t.Setenv("ANTHROPIC_API_KEY", "sk-ant-env-secret-999")
	conf := writeConfig(t, "provider: anthropic\ntoken: proxy-client-token-42\nanthropic:\n  api_key: sk-ant-file-secret-123\n")
	out := filepath.Join(t.TempDir(), "openclaw.json")

	code, msg := run(t, "openclaw-config", "--config", conf, "--path", out)
	if code != 0 || !strings.Contains(msg, "wrote") {
		t.Fatalf("exit %d: %s", code, msg)
	}
	b, _ := os.ReadFile(out)
	for _, secret := range []string{"sk-ant-file-secret", "sk-ant-env-secret"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("openclaw.json contains the API key %s", secret)
		}
	}
	if !strings.Contains(string(b), `"apiKey": "proxy-client-token-42"`) || !strings.Contains(string(b), `"primary": "qubes/claude-sonnet-4"`) {
		t.Errorf("generated:\n%s", b)
	}
	token := openclaw.GatewayToken(b)

	// Switching the proxy's provider regenerates the untouched file, keeping the token.
	conf2 := writeConfig(t, "provider: ollama\n")
	if code, msg := run(t, "openclaw-config", "--config", conf2, "--path", out); code != 0 || !strings.Contains(msg, "updated") {
		t.Fatalf("regenerate: exit %d: %s", code, msg)
	}
	b, _ = os.ReadFile(out)
	if openclaw.GatewayToken(b) != token || !strings.Contains(string(b), `"primary": "qubes/llama3.3:70b"`) {
		t.Errorf("regenerated:\n%s", b)
	}

	// A hand edit survives a second run without --force.
	edited := strings.Replace(string(b), `"bind": "loopback"`, `"bind": "lan"`, 1)
	_ = os.WriteFile(out, []byte(edited), 0o600)
	code, msg = run(t, "openclaw-config", "--config", conf, "--path", out)
	if code != exitEdited || !strings.Contains(msg, `- `) || !strings.Contains(msg, "--force") {
		t.Errorf("edited: exit %d: %s", code, msg)
	}
	if got, _ := os.ReadFile(out); string(got) != edited {
		t.Error("the edited file was changed without --force")
	}
	if code, _ := run(t, "openclaw-config", "--config", conf, "--path", out, "--force"); code != 0 {
		t.Errorf("--force: exit %d", code)
	}
	if got, _ := os.ReadFile(out + ".bak"); string(got) != edited {
		t.Error("--force must keep the edited file as .bak")
	}
}

func TestOpenclawConfigDefaultPath(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("OPENCLAW_CONFIG_PATH", "")
	if code, msg := run(t, "openclaw-config", "--config", writeConfig(t, "provider: cursor\n")); code != 0 {
		t.Fatalf("exit %d: %s", code, msg)
	}
	if _, err := os.Stat(filepath.Join(home, ".openclaw", "openclaw.json")); err != nil {
		t.Error(err)
	}
	if code, _ := run(t, "openclaw-config", "--config", writeConfig(t, "provider: cursor\n"), "--model", "nope"); code != 2 {
		t.Errorf("unknown default model: exit %d, want 2", code)
	}
}
