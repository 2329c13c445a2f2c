package openai

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/chat"
)

// upstream is a stand-in OpenAI API that records what it received and
// answers with a recorded-shape fixture or an error.
type upstream struct {
	mu      sync.Mutex
	path    string
	auth    string
	body    map[string]any
	status  int
	header  map[string]string
	reply   string
	replyCT string
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.path, u.auth = r.URL.Path, r.Header.Get("Authorization")
	b, _ := io.ReadAll(r.Body)
	u.body = nil
	_ = json.Unmarshal(b, &u.body)
	u.mu.Unlock()
	for k, v := range u.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", u.replyCT)
	w.WriteHeader(u.status)
	_, _ = io.WriteString(w, u.reply)
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// recorder is a Sink keeping every chunk and assembling the answer.
type recorder struct {
	chunks []*chat.Chunk
	col    *chat.Collector
}

func newRecorder() *recorder { return &recorder{col: chat.NewCollector(nil)} }
func (r *recorder) Send(c *chat.Chunk) error {
	r.chunks = append(r.chunks, c)
	return r.col.Send(c)
}
func (r *recorder) Progress() {}

func newProvider(url string) *Provider {
	return New("openai", url+"/v1", "sk-test-key-0123456789", []chat.Model{{ID: "gpt-4o"}}, http.DefaultClient)
}

func parse(t *testing.T, body string) *chat.Request {
	t.Helper()
	r, err := chat.ParseRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRequestPassThrough(t *testing.T) {
	u := &upstream{status: 200, reply: fixture(t, "stream_text.sse"), replyCT: "text/event-stream"}
	ts := httptest.NewServer(u)
	defer ts.Close()
	req := parse(t, `{"model":"alias","stream":true,"seed":42,"response_format":{"type":"json_object"},
		"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],
		"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}`)
	req.Model = "gpt-4o-upstream"
	if err := newProvider(ts.URL).Chat(context.Background(), req, newRecorder()); err != nil {
		t.Fatal(err)
	}
	if u.path != "/v1/chat/completions" || u.auth != "Bearer sk-test-key-0123456789" {
		t.Errorf("path %q auth %q", u.path, u.auth)
	}
	want := map[string]any{
		"model": "gpt-4o-upstream", "stream": true, "seed": 42.0,
		"stream_options":  map[string]any{"include_usage": true},
		"response_format": map[string]any{"type": "json_object"},
	}
	for k, v := range want {
		if !reflect.DeepEqual(u.body[k], v) {
			t.Errorf("upstream body %s = %#v, want %#v", k, u.body[k], v)
		}
	}
	if tools, _ := u.body["tools"].([]any); len(tools) != 1 {
		t.Errorf("tools not passed through: %v", u.body["tools"])
	}
	if msgs, _ := u.body["messages"].([]any); len(msgs) != 1 {
		t.Errorf("messages not passed through: %v", u.body["messages"])
	}
}

func TestRelay(t *testing.T) {
	tests := []struct {
		name       string
		stream     bool
		reply, ct  string
		wantText   string
		wantCalls  []chat.ToolCall
		wantFinish string
		wantUsage  chat.Usage
		wantChunks int
		wantModel  string
	}{
		{name: "text stream", stream: true, reply: "stream_text.sse", ct: "text/event-stream",
			wantText: "Hello, world", wantFinish: "length", wantUsage: chat.Usage{PromptTokens: 9, CompletionTokens: 3, TotalTokens: 12},
			wantChunks: 5, wantModel: "gpt-4o-mini-2024-07-18"},
		{name: "parallel tool calls split across chunks", stream: true, reply: "stream_tools.sse", ct: "text/event-stream",
			wantCalls: []chat.ToolCall{
				{ID: "call_a", Type: "function", Function: chat.FunctionCall{Name: "read_file", Arguments: `{"path": "a.txt"}`}},
				{ID: "call_b", Type: "function", Function: chat.FunctionCall{Name: "list_dir", Arguments: `{"dir": "."}`}},
			},
			wantFinish: "tool_calls", wantChunks: 7, wantModel: "gpt-4o-2024-08-06",
			wantUsage: chat.Usage{PromptTokens: 81, CompletionTokens: 40, TotalTokens: 121, PromptTokensDetails: &chat.PromptTokensDetails{CachedTokens: 64}, CompletionTokensDetails: &chat.CompletionTokensDetails{}}},
		{name: "non-stream tool calls", reply: "response_tools.json", ct: "application/json",
			wantCalls: []chat.ToolCall{
				{ID: "call_x", Type: "function", Function: chat.FunctionCall{Name: "get_weather", Arguments: `{"city":"Rome"}`}},
				{ID: "call_y", Type: "function", Function: chat.FunctionCall{Name: "get_time", Arguments: `{}`}},
			},
			wantFinish: "tool_calls", wantChunks: 3, wantModel: "gpt-4o-2024-08-06",
			wantUsage: chat.Usage{PromptTokens: 50, CompletionTokens: 20, TotalTokens: 70, PromptTokensDetails: &chat.PromptTokensDetails{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &upstream{status: 200, reply: fixture(t, tt.reply), replyCT: tt.ct}
			ts := httptest.NewServer(u)
			defer ts.Close()
			req := parse(t, `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`)
			req.Stream = tt.stream
			rec := newRecorder()
			if err := newProvider(ts.URL).Chat(context.Background(), req, rec); err != nil {
				t.Fatal(err)
			}
			if u.body["stream"] != tt.stream {
				t.Errorf("upstream stream = %v, want %v", u.body["stream"], tt.stream)
			}
			if len(rec.chunks) != tt.wantChunks {
				t.Errorf("%d chunks, want %d", len(rec.chunks), tt.wantChunks)
			}
			r := rec.col.Response("id", 1, "gpt-4o")
			m := r.Choices[0].Message
			text := ""
			if m.Content != nil {
				text = *m.Content
			}
			if text != tt.wantText || r.Choices[0].FinishReason != tt.wantFinish || r.Model != tt.wantModel {
				t.Errorf("text %q finish %q model %q", text, r.Choices[0].FinishReason, r.Model)
			}
			if !reflect.DeepEqual(m.ToolCalls, tt.wantCalls) {
				t.Errorf("tool calls\n got %+v\nwant %+v", m.ToolCalls, tt.wantCalls)
			}
			if !reflect.DeepEqual(*r.Usage, tt.wantUsage) {
				t.Errorf("usage %+v, want %+v", *r.Usage, tt.wantUsage)
			}
		})
	}
}

func TestUpstreamErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		ct         string
		wantStatus int
		wantType   string
		wantCode   string
		wantRetry  time.Duration
		wantMsg    string
	}{
		{name: "bad key", status: 401, body: `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`,
			wantStatus: 401, wantType: "invalid_request_error", wantCode: "invalid_api_key", wantMsg: "Incorrect API key"},
		{name: "rate limit with retry-after-ms", status: 429, header: map[string]string{"retry-after-ms": "2500"},
			body:       `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			wantStatus: 429, wantType: "requests", wantCode: "rate_limit_exceeded", wantRetry: 2500 * time.Millisecond},
		{name: "retry-after seconds", status: 429, header: map[string]string{"Retry-After": "7"}, body: `{}`,
			wantStatus: 429, wantType: chat.TypeRateLimit, wantRetry: 7 * time.Second},
		{name: "model not found", status: 404, body: `{"error":{"message":"The model x does not exist","type":"invalid_request_error","param":null,"code":"model_not_found"}}`,
			wantStatus: 404, wantCode: "model_not_found", wantType: "invalid_request_error"},
		{name: "server error is a bad gateway", status: 500, body: `<html>oops</html>`, wantStatus: 502, wantType: chat.TypeAPI, wantMsg: "HTTP 500"},
		{name: "overloaded", status: 503, body: `{"error":{"message":"overloaded","type":"server_error"}}`, wantStatus: 503, wantType: "server_error"},
		{name: "gateway timeout", status: 504, body: ``, wantStatus: 504, wantType: chat.TypeTimeout},
		{name: "error frame mid-stream", status: 200, ct: "text/event-stream",
			body:       "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\"}}\n\n",
			wantStatus: 502, wantType: "server_error", wantMsg: "The server had an error"},
		{name: "stream cut without finish", status: 200, ct: "text/event-stream",
			body:       "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n",
			wantStatus: 502, wantType: chat.TypeConnection},
		{name: "done without finish", status: 200, ct: "text/event-stream", body: "data: [DONE]\n\n",
			wantStatus: 502, wantType: chat.TypeConnection},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &upstream{status: tt.status, header: tt.header, reply: tt.body, replyCT: tt.ct}
			if u.replyCT == "" {
				u.replyCT = "application/json"
			}
			ts := httptest.NewServer(u)
			defer ts.Close()
			req := parse(t, `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
			err := newProvider(ts.URL).Chat(context.Background(), req, newRecorder())
			var e *chat.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *chat.Error", err)
			}
			if e.Status != tt.wantStatus || e.Type != tt.wantType || e.Code != tt.wantCode || e.RetryAfter != tt.wantRetry ||
				!strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("got %d/%s/%s retry %v msg %q; want %d/%s/%s retry %v msg ~%q",
					e.Status, e.Type, e.Code, e.RetryAfter, e.Message, tt.wantStatus, tt.wantType, tt.wantCode, tt.wantRetry, tt.wantMsg)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	u := &upstream{status: 200, reply: `{"object":"list","data":[]}`, replyCT: "application/json"}
	ts := httptest.NewServer(u)
	defer ts.Close()
	p := newProvider(ts.URL)
	if err := p.Check(context.Background()); err != nil || u.path != "/v1/models" || u.auth == "" {
		t.Errorf("Check = %v (path %q auth %q)", err, u.path, u.auth)
	}
	u.status = 401
	if err := p.Check(context.Background()); err == nil {
		t.Error("a 401 from /models must fail the check")
	}
}
