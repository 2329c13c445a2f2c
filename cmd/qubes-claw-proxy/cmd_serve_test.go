package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"

	"github.com/spf13/pflag"

	"github.com/qubes-claw/qubes-claw/pkg/llmproxy"
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

// standIn answers as OpenAI or Anthropic would, with one short text answer,
// and counts the calls per provider.
func standIn(hits map[string]int, mu *sync.Mutex) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		switch r.URL.Path {
		case "/openai/v1/chat/completions":
			hits["openai"]++
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"choices":[{"index":0,"message":{"role":"assistant","content":"from openai"},"finish_reason":"stop"}]}`)
		case "/anthropic/v1/messages":
			hits["anthropic"]++
			io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude\",\"usage\":{\"input_tokens\":1}}}\n\n"+
				"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"from anthropic\"}}\n\n"+
				"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n"+
				"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
		default:
			http.NotFound(w, r)
		}
	})
}

// TestProviderFromConfigFile: changing only the file's provider and
// restarting switches the provider.
func TestProviderFromConfigFile(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("OPENAI_API_KEY", "sk-openai-from-env-123")
	t.Setenv("ANTHROPIC_API_KEY", "")
	var mu sync.Mutex
	hits := map[string]int{}
	up := httptest.NewServer(standIn(hits, &mu))
	defer up.Close()
	base := fmt.Sprintf("token: client-token-123456\nopenai:\n  base_url: %s/openai/v1\nanthropic:\n  base_url: %s/anthropic\n  api_key: sk-ant-file-123456\n", up.URL, up.URL)
	path := writeConfig(t, "")
	for _, provider := range []string{"openai", "anthropic"} {
		if err := os.WriteFile(path, []byte("provider: "+provider+"\n"+base), 0o600); err != nil {
			t.Fatal(err)
		}
		text, logs := serveOnce(t, path)
		if text != "from "+provider {
			t.Errorf("provider %s: answer %q", provider, text)
		}
		if strings.Contains(logs, "sk-openai-from-env") || strings.Contains(logs, "sk-ant-file") || strings.Contains(logs, "client-token-123456") {
			t.Errorf("a secret reached the log:\n%s", logs)
		}
	}
	if hits["openai"] != 1 || hits["anthropic"] != 1 {
		t.Errorf("upstream hits %v", hits)
	}
}

// serveOnce runs serve with the config file, makes one chat request and
// stops the server, returning the answer text and the log.
func serveOnce(t *testing.T, path string) (string, string) {
	t.Helper()
	g := &globals{spec: llmproxy.Spec(), getenv: os.Getenv, flags: pflag.NewFlagSet("t", pflag.ContinueOnError)}
	g.spec.AddFlags(g.flags)
	if err := g.flags.Parse([]string{"--config", path}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- runServe(ctx, &ServeOptions{g: g, Stderr: &logs, Listener: ln}) }()
	req, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/v1/chat/completions",
		strings.NewReader(`{"model":"","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer client-token-123456")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	stop()
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	if len(out.Choices) == 0 {
		return "", logs.String()
	}
	return out.Choices[0].Message.Content, logs.String()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
