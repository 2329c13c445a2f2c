package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/chat"
)

// Request is the body of POST /v1/messages.
type Request struct {
	Model         string      `json:"model"`
	MaxTokens     int         `json:"max_tokens"`
	System        string      `json:"system,omitempty"`
	Messages      []Message   `json:"messages"`
	Temperature   *float64    `json:"temperature,omitempty"`
	TopP          *float64    `json:"top_p,omitempty"`
	StopSequences []string    `json:"stop_sequences,omitempty"`
	Stream        bool        `json:"stream,omitempty"`
	Tools         []Tool      `json:"tools,omitempty"`
	ToolChoice    *ToolChoice `json:"tool_choice,omitempty"`
	Metadata      *Metadata   `json:"metadata,omitempty"`
}

// Message is one turn; Anthropic knows only the user and assistant roles.
type Message struct {
	Role    string  `json:"role"`
	Content []Block `json:"content"`
}

// Block is a content block. Which fields are set depends on Type: text,
// image, tool_use (assistant) or tool_result (user).
type Block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	Source    *ImageSource    `json:"source,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
	IsError   bool            `json:"is_error,omitempty"`
}

// ImageSource is inline base64 data or a URL.
type ImageSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

// Tool is a tool definition.
type Tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// ToolChoice says whether and which tool the model must use.
type ToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

// Metadata carries the end-user id.
type Metadata struct {
	UserID string `json:"user_id,omitempty"`
}

// Translate converts an OpenAI request to a Messages request. maxTokens is
// used when the client sets no limit (Anthropic requires one).
func Translate(req *chat.Request, maxTokens int) (*Request, error) {
	out := &Request{Model: req.Model, MaxTokens: maxTokens, TopP: req.TopP, StopSequences: req.Stop, Stream: true}
	switch {
	case req.MaxCompletionTokens != nil:
		out.MaxTokens = *req.MaxCompletionTokens
	case req.MaxTokens != nil:
		out.MaxTokens = *req.MaxTokens
	}
	if out.MaxTokens <= 0 {
		return nil, chat.InvalidRequest("max_tokens", "max_tokens must be positive")
	}
	if req.Temperature != nil {
		// OpenAI's range is 0-2, Anthropic's 0-1.
		t := min(max(*req.Temperature, 0), 1)
		out.Temperature = &t
	}
	if req.User != "" {
		out.Metadata = &Metadata{UserID: req.User}
	}
	var system []string
	for i, m := range req.Messages {
		var err error
		switch m.Role {
		case "system", "developer":
			// Anthropic has one top-level system prompt; instructions given
			// later in the conversation join it in order.
			if s := m.Content.String(); s != "" {
				system = append(system, s)
			}
		case "user":
			var blocks []Block
			if blocks, err = userBlocks(m.Content, i); err == nil {
				out.appendTurn("user", blocks)
			}
		case "assistant":
			var blocks []Block
			if blocks, err = assistantBlocks(m, i); err == nil {
				out.appendTurn("assistant", blocks)
			}
		case "tool":
			out.appendTurn("user", []Block{toolResult(m)})
		}
		if err != nil {
			return nil, err
		}
	}
	out.System = strings.Join(system, "\n\n")
	if len(out.Messages) == 0 {
		return nil, chat.InvalidRequest("messages", "no user or assistant message with content")
	}
	tools, choice, err := translateTools(req)
	if err != nil {
		return nil, err
	}
	out.Tools, out.ToolChoice = tools, choice
	return out, nil
}

// appendTurn adds blocks as a turn of role, merging into the previous turn
// when it has the same role: Anthropic wants alternating turns, and all
// results of one assistant turn's tool calls in the single user turn after it.
func (r *Request) appendTurn(role string, blocks []Block) {
	if len(blocks) == 0 {
		return
	}
	if n := len(r.Messages); n > 0 && r.Messages[n-1].Role == role {
		r.Messages[n-1].Content = append(r.Messages[n-1].Content, blocks...)
		return
	}
	r.Messages = append(r.Messages, Message{Role: role, Content: blocks})
}

func userBlocks(c chat.Content, i int) ([]Block, error) {
	if c.Parts == nil {
		if c.Text == "" {
			return nil, nil
		}
		return []Block{{Type: "text", Text: c.Text}}, nil
	}
	var out []Block
	for j, p := range c.Parts {
		switch p.Type {
		case "text":
			if p.Text != "" {
				out = append(out, Block{Type: "text", Text: p.Text})
			}
		case "image_url":
			if p.ImageURL == nil {
				return nil, chat.InvalidRequest(fmt.Sprintf("messages[%d].content[%d].image_url", i, j), "image_url part without a url")
			}
			src, err := imageSource(p.ImageURL.URL)
			if err != nil {
				return nil, chat.InvalidRequest(fmt.Sprintf("messages[%d].content[%d].image_url.url", i, j), "%v", err)
			}
			out = append(out, Block{Type: "image", Source: src})
		default:
			return nil, chat.InvalidRequest(fmt.Sprintf("messages[%d].content[%d].type", i, j), "content part type %q is not supported by the anthropic provider", p.Type)
		}
	}
	return out, nil
}

// imageSource turns a data: URL into inline base64 data; any other URL is
// passed by reference.
func imageSource(url string) (*ImageSource, error) {
	rest, ok := strings.CutPrefix(url, "data:")
	if !ok {
		if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
			return nil, fmt.Errorf("image url must be http(s) or a data: URL")
		}
		return &ImageSource{Type: "url", URL: url}, nil
	}
	meta, data, ok := strings.Cut(rest, ",")
	media, isB64 := strings.CutSuffix(meta, ";base64")
	if !ok || !isB64 || media == "" {
		return nil, fmt.Errorf("data: URL must be base64 with a media type")
	}
	return &ImageSource{Type: "base64", MediaType: media, Data: data}, nil
}

func assistantBlocks(m chat.Message, i int) ([]Block, error) {
	var out []Block
	if s := m.Content.String(); s != "" {
		out = append(out, Block{Type: "text", Text: s})
	}
	for j, tc := range m.ToolCalls {
		input := json.RawMessage(`{}`)
		if a := strings.TrimSpace(tc.Function.Arguments); a != "" {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal([]byte(a), &obj); err != nil {
				return nil, chat.InvalidRequest(fmt.Sprintf("messages[%d].tool_calls[%d].function.arguments", i, j),
					"tool call arguments must be a JSON object: %v", err)
			}
			input = json.RawMessage(a)
		}
		out = append(out, Block{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: compact(input)})
	}
	return out, nil
}

func compact(b json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}

func toolResult(m chat.Message) Block {
	var content json.RawMessage
	if m.Content.Parts == nil {
		content, _ = json.Marshal(m.Content.Text)
	} else {
		var blocks []Block
		for _, p := range m.Content.Parts {
			if p.Type == "text" {
				blocks = append(blocks, Block{Type: "text", Text: p.Text})
			}
		}
		content, _ = json.Marshal(blocks)
	}
	return Block{Type: "tool_result", ToolUseID: m.ToolCallID, Content: content}
}

func translateTools(req *chat.Request) ([]Tool, *ToolChoice, error) {
	var tools []Tool
	for i, t := range req.Tools {
		if t.Type != "" && t.Type != "function" {
			return nil, nil, chat.InvalidRequest(fmt.Sprintf("tools[%d].type", i), "tool type %q is not supported", t.Type)
		}
		schema := t.Function.Parameters
		if len(bytes.TrimSpace(schema)) == 0 || string(schema) == "null" {
			schema = json.RawMessage(`{"type":"object"}`)
		}
		tools = append(tools, Tool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: compact(schema)})
	}
	var choice *ToolChoice
	if raw := bytes.TrimSpace(req.ToolChoice); len(raw) > 0 && string(raw) != "null" {
		var s string
		var obj struct {
			Type     string `json:"type"`
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		switch {
		case json.Unmarshal(raw, &s) == nil:
			m := map[string]string{"auto": "auto", "required": "any", "none": "none"}[s]
			if m == "" {
				return nil, nil, chat.InvalidRequest("tool_choice", "unknown tool_choice %q", s)
			}
			choice = &ToolChoice{Type: m}
		case json.Unmarshal(raw, &obj) == nil && obj.Function.Name != "":
			choice = &ToolChoice{Type: "tool", Name: obj.Function.Name}
		default:
			return nil, nil, chat.InvalidRequest("tool_choice", "unsupported tool_choice %s", raw)
		}
	}
	if len(tools) == 0 {
		// Without tools a tool_choice means nothing to Anthropic, which
		// rejects it.
		return nil, nil, nil
	}
	if req.ParallelToolCalls != nil && !*req.ParallelToolCalls {
		if choice == nil {
			choice = &ToolChoice{Type: "auto"}
		}
		if choice.Type != "none" {
			choice.DisableParallelToolUse = true
		}
	}
	return tools, choice, nil
}
