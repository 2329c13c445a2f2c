// Package ollama is the provider for a local Ollama server, through its
// OpenAI-compatible /v1 API (so requests and streams pass through like
// OpenAI's); its native /api/tags serves as the health probe.
package ollama

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/chat"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/openai"
)

// Config is the ollama section of the proxy configuration.
type Config struct {
	BaseURL string       `mapstructure:"base_url" doc:"Ollama server URL, without /v1"`
	Models  []chat.Model `mapstructure:"models" doc:"models offered (ids as Ollama names them, e.g. llama3.3:70b); the first is the default"`
}

// Defaults returns the default ollama section.
func Defaults() Config {
	return Config{
		BaseURL: "http://127.0.0.1:11434",
		Models: []chat.Model{
			{ID: "llama3.3:70b", Name: "Llama 3.3 70B", ContextWindow: 128000, MaxTokens: 8192},
			{ID: "qwen2.5-coder:32b", Name: "Qwen 2.5 Coder 32B", ContextWindow: 128000, MaxTokens: 8192},
			{ID: "deepseek-r1:32b", Name: "DeepSeek R1 32B", ContextWindow: 128000, MaxTokens: 8192, Reasoning: true},
		},
	}
}

// Provider is an Ollama server.
type Provider struct {
	*openai.Provider
	base   string
	client *http.Client
}

// New returns the provider. Ollama needs no key.
func New(cfg Config, client *http.Client) *Provider {
	base := strings.TrimRight(cfg.BaseURL, "/")
	p := openai.New("ollama", base+"/v1", "", cfg.Models, client)
	p.NeedsKey = false
	return &Provider{Provider: p, base: base, client: client}
}

// Check asks for the installed models, Ollama's cheapest request.
func (p *Provider) Check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/api/tags", nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return chat.AsError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		status, typ := chat.StatusFromUpstream(resp.StatusCode)
		return &chat.Error{Status: status, Type: typ, Message: fmt.Sprintf("ollama /api/tags returned HTTP %d", resp.StatusCode)}
	}
	return nil
}
