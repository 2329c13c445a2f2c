// Package chat is the OpenAI Chat Completions dialect the proxy speaks to its
// clients: the request, response and stream-chunk types, the OpenAI-shaped
// error, and the Provider and Sink interfaces every upstream adapter
// implements. Providers translate to and from these types; the HTTP server in
// package llmproxy never sees an upstream wire format.
package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Request is a chat completion request. The modelled fields are decoded; Raw
// keeps every top-level field of the body, so a pass-through provider can
// forward the ones this package does not model (seed, response_format, ...).
type Request struct {
	Model               string          `json:"model"`
	Messages            []Message       `json:"messages"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *StreamOptions  `json:"stream_options,omitempty"`
	MaxTokens           *int            `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int            `json:"max_completion_tokens,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	Stop                Stop            `json:"stop,omitempty"`
	N                   *int            `json:"n,omitempty"`
	Tools               []Tool          `json:"tools,omitempty"`
	ToolChoice          json.RawMessage `json:"tool_choice,omitempty"`
	ParallelToolCalls   *bool           `json:"parallel_tool_calls,omitempty"`
	User                string          `json:"user,omitempty"`

	Raw map[string]json.RawMessage `json:"-"`
}

// StreamOptions is the stream_options object.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// ParseRequest decodes and checks a request body. Errors are *Error with
// status 400.
func ParseRequest(body []byte) (*Request, error) {
	var r Request
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, InvalidRequest("", "request body is not a valid chat completion request: %v", err)
	}
	if err := json.Unmarshal(body, &r.Raw); err != nil {
		return nil, InvalidRequest("", "request body must be a JSON object")
	}
	if len(r.Messages) == 0 {
		return nil, InvalidRequest("messages", "messages must not be empty")
	}
	if r.N != nil && *r.N != 1 {
		// Every provider here produces one choice; silently answering n=3
		// with one would break a client that indexes choices.
		return nil, InvalidRequest("n", "only n=1 is supported")
	}
	for i, m := range r.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant", "tool":
		default:
			return nil, InvalidRequest(fmt.Sprintf("messages[%d].role", i), "unknown role %q", m.Role)
		}
		if m.Role == "tool" && m.ToolCallID == "" {
			return nil, InvalidRequest(fmt.Sprintf("messages[%d].tool_call_id", i), "a tool message needs tool_call_id")
		}
	}
	return &r, nil
}

// WantsUsage reports whether the client asked for the usage chunk.
func (r *Request) WantsUsage() bool { return r.StreamOptions != nil && r.StreamOptions.IncludeUsage }

// Message is one conversation message.
type Message struct {
	Role             string     `json:"role"`
	Content          Content    `json:"content"`
	Name             string     `json:"name,omitempty"`
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID       string     `json:"tool_call_id,omitempty"`
	ReasoningContent string     `json:"reasoning_content,omitempty"`
}

// Content is a message's content: a string, an array of parts, or null.
type Content struct {
	Text  string
	Parts []Part // non-nil when the content was an array
}

// Part is one element of array content.
type Part struct {
	Type     string    `json:"type"`
	Text     string    `json:"text,omitempty"`
	ImageURL *ImageURL `json:"image_url,omitempty"`
}

// ImageURL is an image part's reference: an http(s) URL or a data: URL.
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

// UnmarshalJSON accepts a string, an array of parts or null.
func (c *Content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*c = Content{}
		return nil
	case len(b) > 0 && b[0] == '"':
		*c = Content{}
		return json.Unmarshal(b, &c.Text)
	case len(b) > 0 && b[0] == '[':
		var parts []Part
		if err := json.Unmarshal(b, &parts); err != nil {
			return err
		}
		*c = Content{Parts: append([]Part{}, parts...)}
		return nil
	}
	return fmt.Errorf("content must be a string, an array of parts or null")
}

// MarshalJSON writes the form the content was read in.
func (c Content) MarshalJSON() ([]byte, error) {
	if c.Parts != nil {
		return json.Marshal(c.Parts)
	}
	return json.Marshal(c.Text)
}

// String returns the text of the content, text parts joined by newlines;
// other parts are left out.
func (c Content) String() string {
	if c.Parts == nil {
		return c.Text
	}
	var texts []string
	for _, p := range c.Parts {
		if p.Type == "text" {
			texts = append(texts, p.Text)
		}
	}
	return strings.Join(texts, "\n")
}

// Stop is the stop field: a string or an array of strings.
type Stop []string

// UnmarshalJSON accepts a string, an array or null.
func (s *Stop) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*s = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = Stop{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// Tool is a function the model may call.
type Tool struct {
	Type     string   `json:"type"`
	Function Function `json:"function"`
}

// Function describes a callable function.
type Function struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ToolCall is a call of a function by the model. In stream deltas Index says
// which call a fragment belongs to, and only a call's first fragment carries
// ID, Type and Name.
type ToolCall struct {
	Index    *int         `json:"index,omitempty"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function FunctionCall `json:"function"`
}

// FunctionCall is the function part of a tool call; Arguments is a JSON
// document encoded as a string (or a fragment of one in a stream).
type FunctionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// Usage counts tokens.
type Usage struct {
	PromptTokens            int                      `json:"prompt_tokens"`
	CompletionTokens        int                      `json:"completion_tokens"`
	TotalTokens             int                      `json:"total_tokens"`
	PromptTokensDetails     *PromptTokensDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *CompletionTokensDetails `json:"completion_tokens_details,omitempty"`
}

// PromptTokensDetails breaks prompt tokens down.
type PromptTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// CompletionTokensDetails breaks completion tokens down.
type CompletionTokensDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// Finish reasons.
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
)

// Response is a non-streamed chat completion.
type Response struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	SystemFingerprint string   `json:"system_fingerprint,omitempty"`
	Choices           []Choice `json:"choices"`
	Usage             *Usage   `json:"usage,omitempty"`
}

// Choice is one answer of a Response.
type Choice struct {
	Index        int             `json:"index"`
	Message      ResponseMessage `json:"message"`
	FinishReason string          `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs"`
}

// ResponseMessage is the assistant message of a Choice; Content is null when
// the model only called tools.
type ResponseMessage struct {
	Role             string     `json:"role"`
	Content          *string    `json:"content"`
	ReasoningContent string     `json:"reasoning_content,omitempty"`
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
	Refusal          *string    `json:"refusal,omitempty"`
}

// Chunk is one event of a streamed completion. Providers fill Choices, Usage
// and optionally Model; the server stamps ID, Object and Created so every
// chunk of a response agrees.
type Chunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint,omitempty"`
	Choices           []ChunkChoice `json:"choices"`
	Usage             *Usage        `json:"usage,omitempty"`
}

// ChunkChoice is the single choice of a Chunk.
type ChunkChoice struct {
	Index        int     `json:"index"`
	Delta        Delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

// Delta is the increment a chunk carries.
type Delta struct {
	Role             string     `json:"role,omitempty"`
	Content          *string    `json:"content,omitempty"`
	ReasoningContent string     `json:"reasoning_content,omitempty"`
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
	Refusal          *string    `json:"refusal,omitempty"`
}

// TextChunk returns a chunk carrying content text.
func TextChunk(text string) *Chunk {
	return &Chunk{Choices: []ChunkChoice{{Delta: Delta{Content: &text}}}}
}

// ReasoningChunk returns a chunk carrying reasoning text.
func ReasoningChunk(text string) *Chunk {
	return &Chunk{Choices: []ChunkChoice{{Delta: Delta{ReasoningContent: text}}}}
}

// FinishChunk returns the chunk that ends the choice.
func FinishChunk(reason string) *Chunk {
	return &Chunk{Choices: []ChunkChoice{{FinishReason: &reason}}}
}

// UsageChunk returns the trailing usage chunk (no choices).
func UsageChunk(u Usage) *Chunk {
	if u.TotalTokens == 0 {
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	return &Chunk{Choices: []ChunkChoice{}, Usage: &u}
}

// Substantive reports whether c carries output (text, reasoning, tool calls,
// a finish reason or usage) rather than only the opening role.
func (c *Chunk) Substantive() bool {
	if c.Usage != nil {
		return true
	}
	for _, ch := range c.Choices {
		d := ch.Delta
		if ch.FinishReason != nil || (d.Content != nil && *d.Content != "") || d.ReasoningContent != "" ||
			len(d.ToolCalls) > 0 || (d.Refusal != nil && *d.Refusal != "") {
			return true
		}
	}
	return false
}

// Ptr returns a pointer to v.
func Ptr[T any](v T) *T { return &v }
