package llmproxy

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/chat"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/standin"
	"github.com/qubes-claw/qubes-claw/pkg/logging"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func standInConfig(url string) Config {
	cfg := testConfig()
	cfg.OpenAI.BaseURL = url + "/openai/v1"
	cfg.OpenAI.APIKey = "sk-openai-test-0123456789"
	cfg.Anthropic.BaseURL = url + "/anthropic"
	cfg.Anthropic.APIKey = "sk-ant-test-0123456789"
	cfg.Ollama.BaseURL = url + "/ollama"
	return cfg
}

var (
	idRE      = regexp.MustCompile(`chatcmpl-[0-9a-f]{24}`)
	createdRE = regexp.MustCompile(`"created":[0-9]+`)
)

func normalize(b []byte) []byte {
	b = idRE.ReplaceAll(b, []byte("chatcmpl-ID"))
	return createdRE.ReplaceAll(b, []byte(`"created":0`))
}

func goldenFile(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "conformance", name)
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
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// TestConformance runs each HTTP provider through the whole server against
// the stand-in and compares the bytes the client receives.
func TestConformance(t *testing.T) {
	up := standin.New()
	ts := httptest.NewServer(up)
	defer ts.Close()
	type tc struct {
		provider, scenario string
		stream             bool
		wantFinish         string
	}
	var cases []tc
	for _, p := range []string{"openai", "ollama"} {
		cases = append(cases,
			tc{p, "text", true, "length"}, tc{p, "tools", true, "tool_calls"},
			tc{p, "text", false, "length"}, tc{p, "tools", false, "tool_calls"})
	}
	cases = append(cases,
		tc{"anthropic", "text", true, "length"}, tc{"anthropic", "tools", true, "tool_calls"},
		tc{"anthropic", "refusal", true, "content_filter"},
		tc{"anthropic", "text", false, "length"}, tc{"anthropic", "tools", false, "tool_calls"})
	for _, c := range cases {
		kind := map[bool]string{true: "stream", false: "json"}[c.stream]
		t.Run(c.provider+"/"+c.scenario+"/"+kind, func(t *testing.T) {
			cfg := standInConfig(ts.URL)
			cfg.Provider = c.provider
			chain, err := Chain(cfg, http.DefaultClient)
			if err != nil {
				t.Fatal(err)
			}
			h := start(t, cfg, chain...)
			body := fmt.Sprintf(`{"model":"","stream":%v,"stream_options":{"include_usage":%v},"messages":[{"role":"user","content":"scenario:%s"}]}`,
				c.stream, c.stream, c.scenario)
			resp := h.post(t, body)
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, raw)
			}
			goldenFile(t, fmt.Sprintf("%s-%s-%s.golden", c.provider, c.scenario, kind), normalize(raw))

			// The same answer, assembled, must carry the expected finish.
			var finish string
			if c.stream {
				chunks, done := readStream(t, bytes.NewReader(raw))
				_, finish, _ = contentOf(chunks)
				if !done {
					t.Error("stream without [DONE]")
				}
			} else {
				var r chat.Response
				if err := json.Unmarshal(raw, &r); err != nil {
					t.Fatal(err)
				}
				finish = r.Choices[0].FinishReason
				if r.Usage == nil || r.Usage.TotalTokens == 0 {
					t.Errorf("no usage in %s", raw)
				}
			}
			if finish != c.wantFinish {
				t.Errorf("finish %q, want %q", finish, c.wantFinish)
			}
			for _, key := range []string{"sk-openai-test", "sk-ant-test"} {
				if strings.Contains(h.log.String(), key) || strings.Contains(string(raw), key) {
					t.Errorf("key %s leaked", key)
				}
			}
		})
	}
	if up.Hits("openai") != 4 || up.Hits("ollama") != 4 || up.Hits("anthropic") != 5 {
		t.Errorf("stand-in hits openai %d, ollama %d, anthropic %d", up.Hits("openai"), up.Hits("ollama"), up.Hits("anthropic"))
	}
}

// TestFallbackAcrossProviders: anthropic overloaded before its first byte,
// ollama answers.
func TestFallbackAcrossProviders(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/anthropic/") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(529)
			_, _ = io.WriteString(w, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)
			return
		}
		standin.New().ServeHTTP(w, r)
	}))
	defer ts.Close()
	cfg := standInConfig(ts.URL)
	cfg.Provider, cfg.Fallback = "anthropic", []string{"ollama"}
	chain, err := Chain(cfg, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	logger, _ := logging.New(logging.Config{Level: "info", Format: "json"}, &logBuf)
	var usage bytes.Buffer
	srv, _ := NewServer(cfg, chain, logger.WithField("t", 1), &usage)
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	h := &harness{url: hs.URL}
	resp := h.post(t, `{"model":"claude-sonnet-4","stream":true,"messages":[{"role":"user","content":"scenario:text"}]}`)
	chunks, done := readStream(t, resp.Body)
	if text, _, _ := contentOf(chunks); text != "Hello, world" || !done {
		t.Errorf("text %q done %v", text, done)
	}
	var rec usageRecord
	_ = json.Unmarshal(usage.Bytes(), &rec)
	if rec.Provider != "ollama" || strings.Join(rec.FallbackFrom, ",") != "anthropic" || rec.Upstream != "llama3.3:70b" {
		t.Errorf("usage record %+v", rec)
	}
}
