package llmproxy

import (
	"fmt"
	"net/http"
	"os"

	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/anthropic"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/chat"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/cursor"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/ollama"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/openai"
)

// ErrMissingKey is wrapped when a provider in the chain has no credentials.
var ErrMissingKey = fmt.Errorf("missing API key")

// Chain builds the configured provider and its fallbacks, in order. A
// provider without its key fails here, naming the key to set, so a
// misconfigured proxy does not start.
func Chain(cfg Config, client *http.Client) ([]chat.Provider, error) {
	var chain []chat.Provider
	for _, name := range append([]string{cfg.Provider}, cfg.Fallback...) {
		p, err := build(name, cfg, client)
		if err != nil {
			return nil, err
		}
		chain = append(chain, p)
	}
	return chain, nil
}

func build(name string, cfg Config, client *http.Client) (chat.Provider, error) {
	switch name {
	case "openai":
		if cfg.OpenAI.APIKey == "" {
			return nil, missingKey(name, "openai.api_key", "OPENAI_API_KEY")
		}
		return openai.New(name, cfg.OpenAI.BaseURL, cfg.OpenAI.APIKey.Reveal(), cfg.OpenAI.Models, client), nil
	case "anthropic":
		if cfg.Anthropic.APIKey == "" {
			return nil, missingKey(name, "anthropic.api_key", "ANTHROPIC_API_KEY")
		}
		return anthropic.New(cfg.Anthropic, client), nil
	case "ollama":
		return ollama.New(cfg.Ollama, client), nil
	case "cursor":
		p := cursor.New(cfg.Cursor, os.Getenv("HOME"))
		if _, err := p.Agent(); err != nil {
			return nil, fmt.Errorf("provider cursor: %w", err)
		}
		return p, nil
	}
	return nil, fmt.Errorf("unknown provider %q", name)
}

func missingKey(provider, key, env string) error {
	return fmt.Errorf("provider %s: %w: set %s in the config file, or $%s (or $%s_%s)",
		provider, ErrMissingKey, key, env, EnvPrefix, envSuffix(key))
}

// envSuffix turns a dotted key into the tail of its QCPROXY_ variable.
func envSuffix(key string) string {
	out := []byte(key)
	for i, c := range out {
		switch {
		case c == '.':
			out[i] = '_'
		case c >= 'a' && c <= 'z':
			out[i] = c - 'a' + 'A'
		}
	}
	return string(out)
}

// Secrets returns every secret in cfg, for the log redactor.
func Secrets(cfg Config) []string {
	var out []string
	for _, s := range []string{cfg.Token.Reveal(), cfg.OpenAI.APIKey.Reveal(), cfg.Anthropic.APIKey.Reveal(), cfg.Cursor.APIKey.Reveal()} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
