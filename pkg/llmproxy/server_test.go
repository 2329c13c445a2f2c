package llmproxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/chat"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/sse"
	"github.com/qubes-claw/qubes-claw/pkg/logging"
)

// fakeProvider is a scripted provider for the server's own logic.
type fakeProvider struct {
	name     string
	models   []chat.Model
	checkErr error
	chat     func(ctx context.Context, req *chat.Request, out chat.Sink) error

	mu   sync.Mutex
	reqs []chat.Request
}

func (f *fakeProvider) Name() string                { return f.name }
func (f *fakeProvider) Models() []chat.Model        { return f.models }
func (f *fakeProvider) Authenticated() bool         { return true }
func (f *fakeProvider) Check(context.Context) error { return f.checkErr }
func (f *fakeProvider) calls() int                  { f.mu.Lock(); defer f.mu.Unlock(); return len(f.reqs) }
func (f *fakeProvider) lastModel() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1].Model
}
func (f *fakeProvider) Chat(ctx context.Context, req *chat.Request, out chat.Sink) error {
	f.mu.Lock()
	f.reqs = append(f.reqs, *req)
	f.mu.Unlock()
	return f.chat(ctx, req, out)
}

// answer sends text in pieces, then a finish and usage.
func answer(pieces ...string) func(context.Context, *chat.Request, chat.Sink) error {
	return func(_ context.Context, _ *chat.Request, out chat.Sink) error {
		for _, p := range pieces {
			if err := out.Send(chat.TextChunk(p)); err != nil {
				return err
			}
		}
		if err := out.Send(chat.FinishChunk(chat.FinishStop)); err != nil {
			return err
		}
		return out.Send(chat.UsageChunk(chat.Usage{PromptTokens: 7, CompletionTokens: len(pieces)}))
	}
}

func fail(e *chat.Error) func(context.Context, *chat.Request, chat.Sink) error {
	return func(context.Context, *chat.Request, chat.Sink) error { return e }
}

func testConfig() Config {
	c := Defaults()
	c.Token = "test-client-token-123"
	return c
}

type harness struct {
	url   string
	usage *bytes.Buffer
	log   *bytes.Buffer
}

func start(t *testing.T, cfg Config, chain ...chat.Provider) *harness {
	t.Helper()
	var logBuf, usage bytes.Buffer
	logger, err := logging.New(logging.Config{Level: "debug", Format: "json"}, &syncWriter{w: &logBuf})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(cfg, chain, logger.WithField("test", t.Name()), &syncWriter{w: &usage})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &harness{url: ts.URL, usage: &usage, log: &logBuf}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (h *harness) post(t *testing.T, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer test-client-token-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const streamBody = `{"model":"m1","stream":true,"messages":[{"role":"user","content":"hi"}]}`
const plainBody = `{"model":"m1","messages":[{"role":"user","content":"hi"}]}`

// readStream returns the chunks (or error objects) of an SSE response and
// whether it ended with [DONE].
func readStream(t *testing.T, r io.Reader) (chunks []map[string]any, done bool) {
	t.Helper()
	sr := sse.NewReader(r)
	for {
		ev, err := sr.Next()
		if errors.Is(err, io.EOF) {
			return chunks, done
		}
		if err != nil {
			t.Fatalf("reading stream: %v", err)
		}
		if done {
			t.Fatalf("event after [DONE]: %s", ev.Data)
		}
		if bytes.Equal(ev.Data, sse.Done) {
			done = true
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(ev.Data, &m); err != nil {
			t.Fatalf("bad chunk %s: %v", ev.Data, err)
		}
		chunks = append(chunks, m)
	}
}

func contentOf(chunks []map[string]any) (text, finish, role string) {
	for _, c := range chunks {
		choices, _ := c["choices"].([]any)
		for _, ch := range choices {
			m := ch.(map[string]any)
			d := m["delta"].(map[string]any)
			if s, ok := d["content"].(string); ok {
				text += s
			}
			if r, ok := d["role"].(string); ok && role == "" {
				role = r
			}
			if f, ok := m["finish_reason"].(string); ok {
				finish = f
			}
		}
	}
	return
}

func TestStreamAndCollect(t *testing.T) {
	p := &fakeProvider{name: "openai", models: []chat.Model{{ID: "m1", Upstream: "up-1"}}, chat: answer("Hel", "lo")}
	h := start(t, testConfig(), p)

	t.Run("stream", func(t *testing.T) {
		resp := h.post(t, streamBody)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		chunks, done := readStream(t, resp.Body)
		text, finish, role := contentOf(chunks)
		if !done || text != "Hello" || finish != "stop" || role != "assistant" {
			t.Errorf("done=%v text=%q finish=%q role=%q", done, text, finish, role)
		}
		ids := map[any]bool{}
		for _, c := range chunks {
			ids[c["id"]] = true
			if c["object"] != "chat.completion.chunk" || c["usage"] != nil {
				t.Errorf("bad chunk (usage must be absent unless asked): %v", c)
			}
		}
		if len(ids) != 1 {
			t.Errorf("chunks must share one id: %v", ids)
		}
		if got := p.lastModel(); got != "up-1" {
			t.Errorf("provider got model %q, want the upstream id up-1", got)
		}
	})
	t.Run("stream with usage", func(t *testing.T) {
		resp := h.post(t, `{"model":"m1","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
		chunks, _ := readStream(t, resp.Body)
		last := chunks[len(chunks)-1]
		u, ok := last["usage"].(map[string]any)
		if !ok || u["prompt_tokens"] != 7.0 || u["total_tokens"] != 9.0 || len(last["choices"].([]any)) != 0 {
			t.Errorf("last chunk must be the usage chunk: %v", last)
		}
	})
	t.Run("collect", func(t *testing.T) {
		resp := h.post(t, plainBody)
		var r chat.Response
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || r.Object != "chat.completion" || *r.Choices[0].Message.Content != "Hello" ||
			r.Choices[0].FinishReason != "stop" || r.Usage == nil || r.Usage.CompletionTokens != 2 || r.Model != "m1" {
			t.Errorf("status %d, response %+v", resp.StatusCode, r)
		}
		if resp.Header.Get("X-Request-Id") != r.ID || !strings.HasPrefix(r.ID, "chatcmpl-") {
			t.Errorf("id %q, header %q", r.ID, resp.Header.Get("X-Request-Id"))
		}
	})
	var lines []usageRecord
	for _, l := range strings.Split(strings.TrimSpace(h.usage.String()), "\n") {
		var rec usageRecord
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, rec)
	}
	if len(lines) != 3 || lines[2].Provider != "openai" || lines[2].Model != "m1" || lines[2].Status != 200 ||
		lines[2].PromptTokens != 7 || lines[0].FirstByteMS < 0 {
		t.Errorf("usage log: %+v", lines)
	}
	if strings.Contains(h.usage.String(), "hi") || strings.Contains(h.log.String(), "Hel") {
		t.Error("prompts and outputs must never be logged")
	}
}

func TestToolCallsForceFinishReason(t *testing.T) {
	p := &fakeProvider{name: "x", chat: func(_ context.Context, _ *chat.Request, out chat.Sink) error {
		tc := chat.ToolCall{Index: chat.Ptr(0), ID: "call_1", Type: "function", Function: chat.FunctionCall{Name: "f"}}
		if err := out.Send(&chat.Chunk{Choices: []chat.ChunkChoice{{Delta: chat.Delta{ToolCalls: []chat.ToolCall{tc}}}}}); err != nil {
			return err
		}
		frag := chat.ToolCall{Index: chat.Ptr(0), Function: chat.FunctionCall{Arguments: `{"a":1}`}}
		if err := out.Send(&chat.Chunk{Choices: []chat.ChunkChoice{{Delta: chat.Delta{ToolCalls: []chat.ToolCall{frag}}}}}); err != nil {
			return err
		}
		return out.Send(chat.FinishChunk(chat.FinishStop)) // an upstream that says "stop" after tool calls
	}}
	h := start(t, testConfig(), p)
	chunks, _ := readStream(t, h.post(t, streamBody).Body)
	if _, finish, _ := contentOf(chunks); finish != "tool_calls" {
		t.Errorf("stream finish = %q, want tool_calls", finish)
	}
	var r chat.Response
	_ = json.NewDecoder(h.post(t, plainBody).Body).Decode(&r)
	m := r.Choices[0].Message
	if r.Choices[0].FinishReason != "tool_calls" || m.Content != nil || len(m.ToolCalls) != 1 ||
		m.ToolCalls[0].Function.Arguments != `{"a":1}` || m.ToolCalls[0].Index != nil {
		t.Errorf("collected %+v", r)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		auth       string
		err        *chat.Error
		wantStatus int
		wantType   string
		wantRetry  string
	}{
		{name: "no token", body: plainBody, auth: "-", wantStatus: 401, wantType: chat.TypeAuthentication},
		{name: "wrong token", body: plainBody, auth: "Bearer nope", wantStatus: 401, wantType: chat.TypeAuthentication},
		{name: "bad json", body: `{"model":`, wantStatus: 400, wantType: chat.TypeInvalidRequest},
		{name: "no messages", body: `{"model":"m1","messages":[]}`, wantStatus: 400, wantType: chat.TypeInvalidRequest},
		{name: "n>1", body: `{"model":"m1","n":2,"messages":[{"role":"user","content":"x"}]}`, wantStatus: 400},
		{name: "rate limit keeps retry-after", body: streamBody,
			err:        &chat.Error{Status: 429, Type: chat.TypeRateLimit, Message: "slow down", RetryAfter: 1500 * time.Millisecond},
			wantStatus: 429, wantType: chat.TypeRateLimit, wantRetry: "2"},
		{name: "upstream auth", body: plainBody, err: &chat.Error{Status: 401, Type: chat.TypeAuthentication, Message: "bad key"},
			wantStatus: 401, wantType: chat.TypeAuthentication},
		{name: "unclassified error is 502 not 429", body: streamBody, wantStatus: 502, wantType: chat.TypeConnection},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &fakeProvider{name: "openai", chat: func(context.Context, *chat.Request, chat.Sink) error {
				if tt.err != nil {
					return tt.err
				}
				return errors.New("dial tcp: connection refused")
			}}
			h := start(t, testConfig(), p)
			req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/chat/completions", strings.NewReader(tt.body))
			switch tt.auth {
			case "":
				req.Header.Set("Authorization", "Bearer test-client-token-123")
			case "-":
			default:
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Code    *string `json:"code"`
				} `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus || (tt.wantType != "" && body.Error.Type != tt.wantType) || body.Error.Message == "" {
				t.Errorf("status %d type %q, want %d %q", resp.StatusCode, body.Error.Type, tt.wantStatus, tt.wantType)
			}
			if got := resp.Header.Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
			if strings.Contains(h.log.String(), "test-client-token-123") {
				t.Error("client token leaked into the log")
			}
		})
	}
}

func TestFallback(t *testing.T) {
	overloaded := &chat.Error{Status: 529, Type: chat.TypeOverloaded, Message: "overloaded"}
	tests := []struct {
		name       string
		primary    func(context.Context, *chat.Request, chat.Sink) error
		wantText   string
		wantStatus int
		wantSecond int // calls of the fallback provider
		wantFrame  bool
	}{
		{name: "before first byte falls back", primary: fail(overloaded), wantText: "from b", wantStatus: 200, wantSecond: 1},
		{name: "role chunk alone does not commit", primary: func(_ context.Context, _ *chat.Request, out chat.Sink) error {
			_ = out.Send(&chat.Chunk{Model: "a-model", Choices: []chat.ChunkChoice{{Delta: chat.Delta{Role: "assistant", Content: chat.Ptr("")}}}})
			return overloaded
		}, wantText: "from b", wantStatus: 200, wantSecond: 1},
		{name: "client error does not fall back", primary: fail(chat.InvalidRequest("messages", "bad")), wantStatus: 400},
		{name: "after first byte: error frame, no fallback", primary: func(_ context.Context, _ *chat.Request, out chat.Sink) error {
			_ = out.Send(chat.TextChunk("partial "))
			return overloaded
		}, wantText: "partial ", wantStatus: 200, wantFrame: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &fakeProvider{name: "a", models: []chat.Model{{ID: "m1"}}, chat: tt.primary}
			b := &fakeProvider{name: "b", models: []chat.Model{{ID: "b-default", Upstream: "b-up"}}, chat: answer("from b")}
			h := start(t, testConfig(), a, b)
			resp := h.post(t, streamBody)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if b.calls() != tt.wantSecond {
				t.Errorf("fallback called %d times, want %d", b.calls(), tt.wantSecond)
			}
			if tt.wantSecond > 0 && b.lastModel() != "b-up" {
				t.Errorf("fallback got model %q; it must use its own default", b.lastModel())
			}
			if resp.StatusCode != 200 {
				return
			}
			chunks, done := readStream(t, resp.Body)
			text, _, _ := contentOf(chunks)
			if text != tt.wantText || !done {
				t.Errorf("text %q done %v", text, done)
			}
			last := chunks[len(chunks)-1]
			_, isErr := last["error"]
			if isErr != tt.wantFrame {
				t.Errorf("last frame %v, want error frame: %v", last, tt.wantFrame)
			}
			if tt.wantFrame && last["error"].(map[string]any)["type"] != chat.TypeOverloaded {
				t.Errorf("error frame %v", last)
			}
		})
	}
}

func TestTimeouts(t *testing.T) {
	hang := func(ctx context.Context, _ *chat.Request, out chat.Sink) error {
		<-ctx.Done()
		return ctx.Err()
	}
	tests := []struct {
		name    string
		set     func(*Config)
		wantMsg string
	}{
		{name: "idle", set: func(c *Config) { c.Timeouts.Idle = 30 * time.Millisecond }, wantMsg: "timeouts.idle"},
		{name: "total", set: func(c *Config) { c.Timeouts.Total = 30 * time.Millisecond }, wantMsg: "timeouts.total"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.set(&cfg)
			h := start(t, cfg, &fakeProvider{name: "a", chat: hang})
			resp := h.post(t, plainBody)
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(b), tt.wantMsg) {
				t.Errorf("status %d body %s", resp.StatusCode, b)
			}
		})
	}
}

func TestHeartbeatCommitsSilentStream(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.Heartbeat = 20 * time.Millisecond
	release := make(chan struct{})
	p := &fakeProvider{name: "a", chat: func(ctx context.Context, _ *chat.Request, out chat.Sink) error {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return answer("late")(ctx, nil, out)
	}}
	h := start(t, cfg, p)
	resp := h.post(t, streamBody)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != ": keep-alive\n" {
		t.Fatalf("first line %q, %v; want a keep-alive comment", line, err)
	}
	close(release)
	chunks, done := readStream(t, br)
	if text, _, _ := contentOf(chunks); text != "late" || !done {
		t.Errorf("text %q done %v", text, done)
	}
}

func TestClientDisconnectCancelsProvider(t *testing.T) {
	cancelled := make(chan struct{})
	p := &fakeProvider{name: "a", chat: func(ctx context.Context, _ *chat.Request, out chat.Sink) error {
		_ = out.Send(chat.TextChunk("x"))
		<-ctx.Done()
		close(cancelled)
		return ctx.Err()
	}}
	h := start(t, testConfig(), p)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.url+"/v1/chat/completions", strings.NewReader(streamBody))
	req.Header.Set("Authorization", "Bearer test-client-token-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = bufio.NewReader(resp.Body).ReadString('\n')
	cancel()
	resp.Body.Close()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("provider context not cancelled after the client left")
	}
}

func TestModelsHealthRoutes(t *testing.T) {
	p := &fakeProvider{name: "anthropic", models: []chat.Model{{ID: "a"}, {ID: "b"}}, checkErr: &chat.Error{Status: 401, Message: "invalid x-api-key"}}
	fb := &fakeProvider{name: "ollama"}
	h := start(t, testConfig(), p, fb)
	get := func(path string, auth bool) (*http.Response, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, h.url+path, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer test-client-token-123")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	if resp, m := get("/v1/models", true); resp.StatusCode != 200 || m["object"] != "list" || len(m["data"].([]any)) != 2 ||
		m["data"].([]any)[0].(map[string]any)["owned_by"] != "anthropic" {
		t.Errorf("models: %d %v", resp.StatusCode, m)
	}
	if resp, _ := get("/v1/models", false); resp.StatusCode != 401 {
		t.Errorf("models without token: %d", resp.StatusCode)
	}
	resp, m := get("/health", false)
	if resp.StatusCode != 200 || m["status"] != "healthy" || m["authenticated"] != true || m["proxy_version"] == nil || m["provider"] != "anthropic" {
		t.Errorf("health: %d %v", resp.StatusCode, m)
	}
	resp, m = get("/health?deep=1", false)
	checks, _ := m["checks"].(map[string]any)
	if resp.StatusCode != 503 || m["status"] != "degraded" || checks["anthropic"] != "invalid x-api-key" || checks["ollama"] != "ok" {
		t.Errorf("deep health: %d %v", resp.StatusCode, m)
	}
	if resp, m := get("/v1/nothing", true); resp.StatusCode != 404 || m["error"] == nil {
		t.Errorf("unknown route: %d %v", resp.StatusCode, m)
	}
	if resp, _ := get("/v1/chat/completions", true); resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET on chat: %d", resp.StatusCode)
	}
}

func TestServeDrainsThenAborts(t *testing.T) {
	cfg := testConfig()
	cfg.Timeouts.Shutdown = 100 * time.Millisecond
	started := make(chan struct{})
	aborted := make(chan struct{})
	p := &fakeProvider{name: "a", chat: func(ctx context.Context, _ *chat.Request, out chat.Sink) error {
		_ = out.Send(chat.TextChunk("x"))
		close(started)
		<-ctx.Done() // never finishes on its own: the bound must cut it
		close(aborted)
		return ctx.Err()
	}}
	srv, err := NewServer(cfg, []chat.Provider{p}, logging.Discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	go func() {
		req, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/v1/chat/completions", strings.NewReader(streamBody))
		req.Header.Set("Authorization", "Bearer test-client-token-123")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	<-started
	stop()
	select {
	case <-aborted:
	case <-time.After(10 * time.Second):
		t.Fatal("the running stream was not aborted after the shutdown bound")
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil after shutdown", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		set     func(*Config)
		wantErr string
	}{
		{name: "defaults", set: func(*Config) {}},
		{name: "ipv6 loopback", set: func(c *Config) { c.Listen = "[::1]:32125" }},
		{name: "non-loopback refused", set: func(c *Config) { c.Listen = "0.0.0.0:32125" }, wantErr: "allow_non_loopback"},
		{name: "non-loopback allowed", set: func(c *Config) { c.Listen = "10.137.0.5:32125"; c.AllowNonLoopback = true }},
		{name: "unknown provider", set: func(c *Config) { c.Provider = "gemini" }, wantErr: `provider: unknown provider "gemini"`},
		{name: "unknown fallback", set: func(c *Config) { c.Fallback = []string{"x"} }, wantErr: "fallback[0]"},
		{name: "duplicate", set: func(c *Config) { c.Fallback = []string{"openai"} }, wantErr: "twice"},
		{name: "zero timeout", set: func(c *Config) { c.Timeouts.Idle = 0 }, wantErr: "timeouts.idle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			tt.set(&c)
			err := c.Validate()
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestApplyEnvAndMissingKey(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	c := Defaults()
	c.ApplyEnv(getenv)
	_, err := Chain(c, http.DefaultClient)
	if !errors.Is(err, ErrMissingKey) || !strings.Contains(err.Error(), "openai.api_key") || !strings.Contains(err.Error(), "OPENAI_API_KEY") {
		t.Fatalf("missing key error %v must name the key and the variable", err)
	}
	c.OpenAI.APIKey = "from-file"
	env["OPENAI_API_KEY"] = "from-env"
	c.ApplyEnv(getenv)
	if c.OpenAI.APIKey != "from-env" {
		t.Errorf("OPENAI_API_KEY must override the file: %q", c.OpenAI.APIKey.Reveal())
	}
	c.OpenAI.APIKey = "from-own-var"
	env["QCPROXY_OPENAI_API_KEY"] = "from-own-var"
	c.ApplyEnv(getenv)
	if c.OpenAI.APIKey != "from-own-var" {
		t.Errorf("QCPROXY_OPENAI_API_KEY must win over OPENAI_API_KEY")
	}
	if chain, err := Chain(c, http.DefaultClient); err != nil || chain[0].Name() != "openai" {
		t.Errorf("Chain = %v, %v", chain, err)
	}
}
