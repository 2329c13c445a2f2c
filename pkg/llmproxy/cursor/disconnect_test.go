package cursor_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/chat"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/cursor"
	"github.com/qubes-claw/qubes-claw/pkg/logging"
)

// TestClientDisconnectKillsAgent is the acceptance check: a client leaving
// mid-stream makes the proxy signal the agent (the fake records SIGTERM).
func TestClientDisconnectKillsAgent(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := llmproxy.Defaults()
	cfg.Provider = "cursor"
	ws := t.TempDir()
	cfg.Cursor.AgentPath, cfg.Cursor.Workspace = config.Path(exe), config.Path(ws)
	srv, err := llmproxy.NewServer(cfg, []chat.Provider{cursor.New(cfg.Cursor, t.TempDir())}, logging.Discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"hang","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, `"content":"x"`) {
		t.Fatalf("first line %q, %v", line, err)
	}
	cancel() // the client leaves mid-stream
	resp.Body.Close()

	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, _ := os.ReadFile(filepath.Join(ws, "signal")); string(b) == "SIGTERM" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("cursor-agent was not signalled after the client disconnected")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
