package cursor

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/chat"
)

func testProvider(t *testing.T, set func(*Config)) (*Provider, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := Defaults()
	c.AgentPath = config.Path(exe)
	ws := filepath.Join(t.TempDir(), "ws") // created by the provider
	c.Workspace = config.Path(ws)
	c.KillGrace = 200 * time.Millisecond
	if set != nil {
		set(&c)
	}
	return New(c, t.TempDir()), ws
}

type recorder struct {
	chunks []*chat.Chunk
	col    *chat.Collector
}

func (r *recorder) Send(c *chat.Chunk) error {
	r.chunks = append(r.chunks, c)
	return r.col.Send(c)
}
func (r *recorder) Progress() {}

func chatWith(t *testing.T, p *Provider, ctx context.Context, model string) (*recorder, error) {
	t.Helper()
	req, err := chat.ParseRequest([]byte(`{"model":"x","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hello"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Model = model
	rec := &recorder{col: chat.NewCollector(nil)}
	return rec, p.Chat(ctx, req, rec)
}

func TestEvents(t *testing.T) {
	tests := []struct {
		model, wantText, wantReasoning string
		wantUsage                      *chat.Usage
	}{
		{"partial", "Hello world", "Let me think.", &chat.Usage{PromptTokens: 150, CompletionTokens: 5, TotalTokens: 155,
			PromptTokensDetails: &chat.PromptTokensDetails{CachedTokens: 50}}},
		{"consolidated", "Full answer", "", nil},
		{"result_only", "Only result", "", nil},
		{"tail", "Hello world", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			p, ws := testProvider(t, func(c *Config) { c.APIKey = "cursor-key-0123456789" })
			rec, err := chatWith(t, p, context.Background(), tt.model)
			if err != nil {
				t.Fatal(err)
			}
			r := rec.col.Response("id", 0, "")
			m := r.Choices[0].Message
			if *m.Content != tt.wantText || m.ReasoningContent != tt.wantReasoning || r.Choices[0].FinishReason != "stop" {
				t.Errorf("text %q reasoning %q finish %q", *m.Content, m.ReasoningContent, r.Choices[0].FinishReason)
			}
			if tt.wantUsage != nil && (r.Usage == nil || *r.Usage.PromptTokensDetails != *tt.wantUsage.PromptTokensDetails ||
				r.Usage.PromptTokens != tt.wantUsage.PromptTokens || r.Usage.TotalTokens != tt.wantUsage.TotalTokens) {
				t.Errorf("usage %+v", r.Usage)
			}
			for _, c := range rec.chunks {
				for _, ch := range c.Choices {
					if len(ch.Delta.ToolCalls) > 0 {
						t.Error("the agent's own tool runs must not become OpenAI tool calls")
					}
				}
			}
			argv, _ := os.ReadFile(filepath.Join(ws, "argv"))
			for _, want := range []string{"--output-format\nstream-json", "--stream-partial-output", "--model\n" + tt.model, "--mode\nask", "--workspace\n" + ws} {
				if !strings.Contains(string(argv), want) {
					t.Errorf("argv %q lacks %q", argv, want)
				}
			}
			prompt, _ := os.ReadFile(filepath.Join(ws, "prompt"))
			if string(prompt) != "[system]\nBe brief.\n\n[user]\nSay hello" {
				t.Errorf("prompt on stdin = %q", prompt)
			}
			if key, _ := os.ReadFile(filepath.Join(ws, "env-key")); string(key) != "cursor-key-0123456789" {
				t.Errorf("CURSOR_API_KEY = %q", key)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		model      string
		wantStatus int
		wantCode   string
		wantChunks int
		wantMsg    string
	}{
		{"auth", 401, "cursor_auth", 0, "cursor-agent login"},
		{"quota", 429, "cursor_usage_limit", 0, "usage limit"},
		{"badmodel", 404, "model_not_found", 0, "Cannot use this model"},
		{"author", 502, "cursor_agent_failed", 0, "author field"},
		{"result_error", 502, "cursor_agent_failed", 0, "The agent crashed"},
		{"midway", 502, "cursor_network", 1, "fetch failed"},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			p, _ := testProvider(t, nil)
			rec, err := chatWith(t, p, context.Background(), tt.model)
			var e *chat.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v", err)
			}
			if e.Status != tt.wantStatus || e.Code != tt.wantCode || !strings.Contains(e.Message, tt.wantMsg) || strings.Contains(e.Message, "\x1b") {
				t.Errorf("got %d %s %q", e.Status, e.Code, e.Message)
			}
			if len(rec.chunks) != tt.wantChunks {
				t.Errorf("%d chunks before the failure, want %d", len(rec.chunks), tt.wantChunks)
			}
		})
	}
}

// waitFile waits for a file the fake agent writes; the bound only keeps a
// broken test from hanging.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			return string(b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
	return ""
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestCancelKillsAgent(t *testing.T) {
	tests := []struct {
		model      string
		wantSignal bool // the fake records a SIGTERM it handled
	}{
		{"hang", true},
		{"stubborn", false}, // ignores SIGTERM: SIGKILL after the grace
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			p, ws := testProvider(t, nil)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := chatWith(t, p, ctx, tt.model)
				done <- err
			}()
			pid, _ := strconv.Atoi(waitFile(t, filepath.Join(ws, "pid")))
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Chat = %v, want context.Canceled", err)
			}
			if tt.wantSignal && waitFile(t, filepath.Join(ws, "signal")) != "SIGTERM" {
				t.Error("the agent did not get SIGTERM")
			}
			if alive(pid) {
				t.Errorf("agent %d still running after Chat returned", pid)
			}
		})
	}
}

func TestLingeringAgentKilledAfterResult(t *testing.T) {
	p, ws := testProvider(t, nil)
	rec, err := chatWith(t, p, context.Background(), "linger")
	if err != nil {
		t.Fatal(err)
	}
	if got := *rec.col.Response("", 0, "").Choices[0].Message.Content; got != "done" {
		t.Errorf("text %q", got)
	}
	if waitFile(t, filepath.Join(ws, "signal")) != "SIGTERM" {
		t.Error("a lingering agent must be stopped after its result")
	}
}

func TestConcurrencyCap(t *testing.T) {
	p, ws := testProvider(t, func(c *Config) { c.MaxConcurrent = 1; c.QueueTimeout = 50 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := chatWith(t, p, ctx, "hang")
		done <- err
	}()
	waitFile(t, filepath.Join(ws, "pid"))
	_, err := chatWith(t, p, context.Background(), "result_only")
	var e *chat.Error
	if !errors.As(err, &e) || e.Status != http.StatusTooManyRequests || e.Code != "concurrency_limit" || e.RetryAfter == 0 {
		t.Errorf("second request while the slot is taken: %v", err)
	}
	cancel()
	<-done
	if _, err := chatWith(t, p, context.Background(), "result_only"); err != nil {
		t.Errorf("the slot must be free again: %v", err)
	}
}

func TestAgentLookupAndCheck(t *testing.T) {
	home := t.TempDir()
	c := Defaults()
	p := New(c, home)
	p.lookPath = func(string) (string, error) { return "", errors.New("not found") }
	if _, err := p.Agent(); !errors.Is(err, ErrNoAgent) {
		t.Errorf("Agent() = %v, want ErrNoAgent", err)
	}
	if err := p.Check(context.Background()); err == nil {
		t.Error("Check must fail without an agent")
	}
	bin := filepath.Join(home, ".local/bin/agent")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	if err := os.Symlink(exe, bin); err != nil {
		t.Fatal(err)
	}
	if got, err := p.Agent(); err != nil || got != bin {
		t.Errorf("Agent() = %q, %v; want the newer name in ~/.local/bin", got, err)
	}
	if err := p.Check(context.Background()); err != nil {
		t.Errorf("Check = %v", err)
	}
	if p.Authenticated() {
		t.Error("no key and no login file: not authenticated")
	}
	if err := os.MkdirAll(filepath.Join(home, ".cursor"), 0o700); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(home, ".cursor/cli-config.json"), []byte("{}"), 0o600)
	if !p.Authenticated() {
		t.Error("a login file means authenticated")
	}
}
