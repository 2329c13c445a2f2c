package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/chat"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n got: %s\nwant: %s", name, got, want)
	}
}

func parse(t *testing.T, body []byte) *chat.Request {
	t.Helper()
	r, err := chat.ParseRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTranslateGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/requests/*.json")
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".golden.json") {
			continue
		}
		n++
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out, err := Translate(parse(t, in), 4096)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.MarshalIndent(out, "", "  ")
			golden(t, "requests/"+name+".golden.json", append(b, '\n'))
		})
	}
	if n < 3 {
		t.Fatalf("only %d request fixtures found", n)
	}
}

// TestTranslateRoundTrip checks the properties the golden files show, so a
// careless -update cannot bless a regression.
func TestTranslateRoundTrip(t *testing.T) {
	in, _ := os.ReadFile("testdata/requests/tools_roundtrip.json")
	out, err := Translate(parse(t, in), 4096)
	if err != nil {
		t.Fatal(err)
	}
	roles := []string{}
	for _, m := range out.Messages {
		roles = append(roles, m.Role)
	}
	if strings.Join(roles, ",") != "user,assistant,user,assistant" {
		t.Fatalf("turns %v: both tool results and the next user text must share one user turn", roles)
	}
	results := out.Messages[2].Content
	if len(results) != 3 || results[0].Type != "tool_result" || results[0].ToolUseID != "toolu_01" ||
		results[1].ToolUseID != "toolu_02" || results[2].Type != "text" {
		t.Errorf("user turn after tools: %+v", results)
	}
	uses := out.Messages[1].Content
	if len(uses) != 2 || string(uses[0].Input) != `{"path":"a.txt"}` || string(uses[1].Input) != `{}` {
		t.Errorf("tool_use blocks: %+v", uses)
	}
	if out.ToolChoice == nil || out.ToolChoice.Type != "any" || !out.ToolChoice.DisableParallelToolUse || out.MaxTokens != 4096 {
		t.Errorf("tool choice %+v, max_tokens %d", out.ToolChoice, out.MaxTokens)
	}

	in, _ = os.ReadFile("testdata/requests/system_multipart.json")
	out, err = Translate(parse(t, in), 4096)
	if err != nil {
		t.Fatal(err)
	}
	if out.System != "You are a careful assistant.\n\nAnswer in English." || *out.Temperature != 1 || out.MaxTokens != 1024 ||
		len(out.Messages) != 3 || len(out.Messages[0].Content) != 3 || out.Messages[0].Content[1].Source.MediaType != "image/png" ||
		out.Messages[0].Content[2].Source.URL != "https://example.org/cat.jpg" {
		t.Errorf("translated %+v", out)
	}
}

func TestTranslateRejects(t *testing.T) {
	tests := []struct {
		name, body, param string
	}{
		{"arguments not json", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{oops"}}]}]}`, "messages[1].tool_calls[0].function.arguments"},
		{"bad data url", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:text/plain,hi"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"only system", `{"model":"m","messages":[{"role":"system","content":"x"}]}`, "messages"},
		{"unknown tool_choice", `{"model":"m","tool_choice":"sometimes","tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"x"}]}`, "tool_choice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Translate(parse(t, []byte(tt.body)), 100)
			var e *chat.Error
			if !errors.As(err, &e) || e.Status != 400 || e.Param != tt.param {
				t.Errorf("err = %v, want a 400 on %s", err, tt.param)
			}
		})
	}
}

// upstream is a stand-in Messages API replaying a recorded-shape stream.
type upstream struct {
	mu     sync.Mutex
	header http.Header
	body   []byte
	path   string
	status int
	hdr    map[string]string
	reply  string
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.header, u.path = r.Header.Clone(), r.URL.Path
	u.body, _ = io.ReadAll(r.Body)
	u.mu.Unlock()
	for k, v := range u.hdr {
		w.Header().Set(k, v)
	}
	if u.status == 200 {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(u.status)
	_, _ = io.WriteString(w, u.reply)
}

type recorder struct {
	chunks   []*chat.Chunk
	progress int
}

func (r *recorder) Send(c *chat.Chunk) error { r.chunks = append(r.chunks, c); return nil }
func (r *recorder) Progress()                { r.progress++ }

func provider(url string) *Provider {
	c := Defaults()
	c.BaseURL = url
	c.APIKey = "sk-ant-test-0123456789"
	return New(c, http.DefaultClient)
}

func TestStreamGolden(t *testing.T) {
	tests := []struct {
		fixture    string
		wantFinish string
		wantUsage  chat.Usage
	}{
		{"stream_tools", "tool_calls", chat.Usage{PromptTokens: 120, CompletionTokens: 57, TotalTokens: 177}},
		{"stream_text", "length", chat.Usage{PromptTokens: 2015, CompletionTokens: 4, TotalTokens: 2019,
			PromptTokensDetails: &chat.PromptTokensDetails{CachedTokens: 2000}}},
		{"stream_refusal", "content_filter", chat.Usage{PromptTokens: 3, CompletionTokens: 1, TotalTokens: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			reply, err := os.ReadFile(filepath.Join("testdata", tt.fixture+".sse"))
			if err != nil {
				t.Fatal(err)
			}
			u := &upstream{status: 200, reply: string(reply)}
			ts := httptest.NewServer(u)
			defer ts.Close()
			rec := &recorder{}
			req := parse(t, []byte(`{"model":"claude-sonnet-4-20250514","messages":[{"role":"user","content":"hi"}]}`))
			if err := provider(ts.URL).Chat(context.Background(), req, rec); err != nil {
				t.Fatal(err)
			}
			if u.path != "/v1/messages" || u.header.Get("x-api-key") != "sk-ant-test-0123456789" ||
				u.header.Get("anthropic-version") != "2023-06-01" || u.header.Get("Authorization") != "" {
				t.Errorf("request path %q headers %v", u.path, u.header)
			}
			var lines bytes.Buffer
			for _, c := range rec.chunks {
				b, _ := json.Marshal(c)
				lines.Write(append(b, '\n'))
			}
			golden(t, tt.fixture+".golden.jsonl", lines.Bytes())

			col := chat.NewCollector(nil)
			for _, c := range rec.chunks {
				_ = col.Send(c)
			}
			r := col.Response("x", 0, "")
			if r.Choices[0].FinishReason != tt.wantFinish {
				t.Errorf("finish %q, want %q", r.Choices[0].FinishReason, tt.wantFinish)
			}
			if b1, b2 := mustJSON(r.Usage), mustJSON(tt.wantUsage); b1 != b2 {
				t.Errorf("usage %s, want %s", b1, b2)
			}
		})
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestStreamToolCallsAssembled(t *testing.T) {
	reply, _ := os.ReadFile("testdata/stream_tools.sse")
	ts := httptest.NewServer(&upstream{status: 200, reply: string(reply)})
	defer ts.Close()
	col := chat.NewCollector(nil)
	req := parse(t, []byte(`{"model":"claude-sonnet-4-20250514","messages":[{"role":"user","content":"hi"}]}`))
	if err := provider(ts.URL).Chat(context.Background(), req, col); err != nil {
		t.Fatal(err)
	}
	m := col.Response("x", 0, "").Choices[0].Message
	if len(m.ToolCalls) != 2 || m.ToolCalls[0].ID != "toolu_A" || m.ToolCalls[0].Function.Arguments != `{"path": "a.txt"}` ||
		m.ToolCalls[1].Function.Name != "now" || m.ToolCalls[1].Function.Arguments != "{}" ||
		*m.Content != "Let me check." || m.ReasoningContent != "Two tools needed." {
		t.Errorf("assembled message %+v", m)
	}
}

func TestErrors(t *testing.T) {
	streamErr, _ := os.ReadFile("testdata/stream_error.sse")
	tests := []struct {
		name       string
		status     int
		hdr        map[string]string
		reply      string
		wantStatus int
		wantType   string
		wantRetry  time.Duration
		wantChunks int
	}{
		{name: "rate limit", status: 429, hdr: map[string]string{"retry-after": "12"},
			reply:      `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`,
			wantStatus: 429, wantType: "rate_limit_error", wantRetry: 12 * time.Second},
		{name: "overloaded keeps 529", status: 529, reply: `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
			wantStatus: 529, wantType: "overloaded_error"},
		{name: "bad key", status: 401, reply: `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`,
			wantStatus: 401, wantType: "authentication_error"},
		{name: "billing", status: 402, reply: `{"type":"error","error":{"type":"billing_error","message":"credit balance too low"}}`,
			wantStatus: 402, wantType: "billing_error"},
		{name: "unknown model", status: 404, reply: `{"type":"error","error":{"type":"not_found_error","message":"model: claude-x"}}`,
			wantStatus: 404, wantType: "not_found_error"},
		{name: "api error is bad gateway", status: 500, reply: `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`,
			wantStatus: 502, wantType: "api_error"},
		{name: "non-anthropic body", status: 503, reply: `<html>maintenance</html>`, wantStatus: 503, wantType: chat.TypeOverloaded},
		{name: "error event mid-stream", status: 200, reply: string(streamErr), wantStatus: 529, wantType: "overloaded_error", wantChunks: 2},
		{name: "stream cut", status: 200, reply: "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n",
			wantStatus: 502, wantType: chat.TypeConnection, wantChunks: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(&upstream{status: tt.status, hdr: tt.hdr, reply: tt.reply})
			defer ts.Close()
			rec := &recorder{}
			req := parse(t, []byte(`{"model":"claude-sonnet-4-20250514","messages":[{"role":"user","content":"hi"}]}`))
			err := provider(ts.URL).Chat(context.Background(), req, rec)
			var e *chat.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v", err)
			}
			if e.Status != tt.wantStatus || e.Type != tt.wantType || e.RetryAfter != tt.wantRetry || e.Message == "" {
				t.Errorf("got %d %s retry %v %q, want %d %s retry %v", e.Status, e.Type, e.RetryAfter, e.Message, tt.wantStatus, tt.wantType, tt.wantRetry)
			}
			if len(rec.chunks) != tt.wantChunks {
				t.Errorf("%d chunks before the error, want %d", len(rec.chunks), tt.wantChunks)
			}
		})
	}
}
