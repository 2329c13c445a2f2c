package chat

import "context"

// Provider is one upstream: OpenAI, Anthropic, Ollama or Cursor.
type Provider interface {
	// Name is the provider's config name ("openai", ...).
	Name() string
	// Models lists the models the provider offers; the first is its default.
	Models() []Model
	// Authenticated reports whether credentials are configured (cheap, no I/O
	// beyond a file check).
	Authenticated() bool
	// Check probes the upstream (the deep health check).
	Check(ctx context.Context) error
	// Chat runs one completion of req (whose Model is already the upstream
	// id), writing the answer to out as stream chunks whether or not the
	// client streams. It returns nil only after the final chunk; an error
	// should be an *Error.
	Chat(ctx context.Context, req *Request, out Sink) error
}

// Sink receives a completion. The server implements it: it streams chunks
// to the client, or collects them into one response.
type Sink interface {
	// Send delivers a chunk. An error means the client is gone and the
	// provider should stop.
	Send(c *Chunk) error
	// Progress tells the server the upstream is alive though it produced no
	// output (e.g. a ping, an agent running a tool), resetting the idle timer.
	Progress()
}

// Model is one model offered by a provider, as configured.
type Model struct {
	// ID is the public model id clients ask for.
	ID string `mapstructure:"id" json:"id"`
	// Name is a display name (OpenClaw's model list).
	Name string `mapstructure:"name" json:"name,omitempty"`
	// Upstream is the id sent upstream; empty means ID.
	Upstream string `mapstructure:"upstream" json:"upstream,omitempty"`
	// ContextWindow and MaxTokens size the model, in tokens.
	ContextWindow int `mapstructure:"context_window" json:"context_window,omitempty"`
	MaxTokens     int `mapstructure:"max_tokens" json:"max_tokens,omitempty"`
	// Reasoning marks a model that produces reasoning output.
	Reasoning bool `mapstructure:"reasoning" json:"reasoning,omitempty"`
	// Images marks a model that accepts image input.
	Images bool `mapstructure:"images" json:"images,omitempty"`
}

// UpstreamID returns the id sent upstream.
func (m Model) UpstreamID() string {
	if m.Upstream != "" {
		return m.Upstream
	}
	return m.ID
}

// String returns the model's id (the config reference lists defaults so).
func (m Model) String() string { return m.ID }
