// Package standin is a STAND-IN for the real LLM providers, for tests,
// benchmarks and `make demo` only: an HTTP server that answers OpenAI's,
// Anthropic's and Ollama's chat APIs by replaying recorded-shape fixtures,
// so the whole chain runs offline. It is never shipped in a package.
//
// Routes: /openai/v1/chat/completions, /ollama/v1/chat/completions,
// /anthropic/v1/messages. The scenario is taken from the last
// "scenario:NAME" in the request body (text, tools, refusal, error); the
// default is text.
package standin

import (
	"embed"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
)

//go:embed fixtures
var fixtures embed.FS

// Server is the stand-in provider.
type Server struct {
	mu   sync.Mutex
	hits map[string]int
}

// New returns a stand-in server.
func New() *Server { return &Server{hits: map[string]int{}} }

// Hits returns how many requests provider ("openai", "anthropic",
// "ollama") has received.
func (s *Server) Hits(provider string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[provider]
}

var scenarioRE = regexp.MustCompile(`scenario:([a-z_]+)`)

// ServeHTTP answers one request from the fixtures.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	var req struct {
		Stream bool `json:"stream"`
	}
	_ = json.Unmarshal(body, &req)
	scenario := "text"
	if m := scenarioRE.FindAllSubmatch(body, -1); m != nil {
		scenario = string(m[len(m)-1][1])
	}
	var provider, file, ct string
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/anthropic/v1/messages":
		provider, file, ct = "anthropic", "anthropic_stream_"+scenario+".sse", "text/event-stream"
	case r.Method == http.MethodPost && (r.URL.Path == "/openai/v1/chat/completions" || r.URL.Path == "/ollama/v1/chat/completions"):
		provider = strings.Split(strings.Trim(r.URL.Path, "/"), "/")[0]
		if req.Stream {
			file, ct = "openai_stream_"+scenario+".sse", "text/event-stream"
		} else {
			file, ct = "openai_response_"+scenario+".json", "application/json"
		}
	default:
		http.NotFound(w, r)
		return
	}
	b, err := fixtures.ReadFile("fixtures/" + file)
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":{"message":"stand-in: no fixture for scenario `+scenario+`","type":"invalid_request_error"}}`)
		return
	}
	s.mu.Lock()
	s.hits[provider]++
	s.mu.Unlock()
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Stand-In", "qubes-claw test provider")
	_, _ = w.Write(b)
}
