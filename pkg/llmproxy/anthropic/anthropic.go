// Package anthropic is the provider for Anthropic's Messages API. It
// translates OpenAI requests (system prompts, multi-part content, images,
// tool calls and tool results, tool choice) into Messages requests, and the
// Messages event stream (text, thinking, tool_use blocks with their argument
// fragments, stop reasons, usage, errors) back into OpenAI chunks.
package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/chat"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/sse"
)

// Config is the anthropic section of the proxy configuration.
type Config struct {
	BaseURL          string        `mapstructure:"base_url" doc:"Anthropic API base URL, without /v1"`
	APIKey           config.Secret `mapstructure:"api_key" doc:"Anthropic API key (also read from $ANTHROPIC_API_KEY)"`
	Version          string        `mapstructure:"version" doc:"anthropic-version header"`
	DefaultMaxTokens int           `mapstructure:"default_max_tokens" doc:"max_tokens sent when neither the client nor the model entry sets one (Anthropic requires it)"`
	Models           []chat.Model  `mapstructure:"models" doc:"models offered (id, name, upstream, context_window, max_tokens, reasoning, images); the first is the default"`
}

// Defaults returns the default anthropic section.
func Defaults() Config {
	return Config{
		BaseURL:          "https://api.anthropic.com",
		Version:          "2023-06-01",
		DefaultMaxTokens: 8192,
		Models: []chat.Model{
			{ID: "claude-sonnet-4", Name: "Claude Sonnet 4", Upstream: "claude-sonnet-4-20250514", ContextWindow: 200000, MaxTokens: 8192, Images: true},
			{ID: "claude-opus-4", Name: "Claude Opus 4", Upstream: "claude-opus-4-20250514", ContextWindow: 200000, MaxTokens: 8192, Images: true},
		},
	}
}

// Provider talks to the Messages API.
type Provider struct {
	cfg    Config
	key    string
	client *http.Client
}

// New returns the provider.
func New(cfg Config, client *http.Client) *Provider {
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	return &Provider{cfg: cfg, key: cfg.APIKey.Reveal(), client: client}
}

// Name implements chat.Provider.
func (p *Provider) Name() string { return "anthropic" }

// Models implements chat.Provider.
func (p *Provider) Models() []chat.Model { return p.cfg.Models }

// Authenticated implements chat.Provider.
func (p *Provider) Authenticated() bool { return p.key != "" }

// Check lists the models, which proves reachability and the key.
func (p *Provider) Check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.BaseURL+"/v1/models", nil)
	if err != nil {
		return err
	}
	p.headers(req)
	resp, err := p.client.Do(req)
	if err != nil {
		return chat.AsError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return upstreamError(resp)
	}
	return nil
}

func (p *Provider) headers(req *http.Request) {
	req.Header.Set("x-api-key", p.key)
	req.Header.Set("anthropic-version", p.cfg.Version)
}

// maxTokens is the limit for a model when the client sets none.
func (p *Provider) maxTokens(upstream string) int {
	for _, m := range p.cfg.Models {
		if m.UpstreamID() == upstream && m.MaxTokens > 0 {
			return m.MaxTokens
		}
	}
	return p.cfg.DefaultMaxTokens
}

// Chat implements chat.Provider. The upstream call always streams, also for
// non-streaming clients: one translation path, and Anthropic refuses long
// non-streamed requests.
func (p *Provider) Chat(ctx context.Context, req *chat.Request, out chat.Sink) error {
	areq, err := Translate(req, p.maxTokens(req.Model))
	if err != nil {
		return err
	}
	body, err := json.Marshal(areq)
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.BaseURL+"/v1/messages", bytes.NewReader(body))
	if err != nil {
		return err
	}
	p.headers(hreq)
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "text/event-stream")
	resp, err := p.client.Do(hreq)
	if err != nil {
		return chat.AsError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return upstreamError(resp)
	}
	return (&streamTranslator{out: out, tools: map[int]*toolState{}}).run(resp.Body)
}

// wireError is Anthropic's error body and error event.
type wireError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// errorStatus maps Anthropic's error types to the status the client gets;
// overloaded keeps its 529, which OpenClaw classifies as "overloaded".
var errorStatus = map[string]int{
	"invalid_request_error": 400,
	"authentication_error":  401,
	"billing_error":         402,
	"permission_error":      403,
	"not_found_error":       404,
	"request_too_large":     413,
	"rate_limit_error":      429,
	"api_error":             502,
	"timeout_error":         504,
	"overloaded_error":      529,
}

func fromWire(w wireError, fallbackStatus int) *chat.Error {
	status, typ := chat.StatusFromUpstream(fallbackStatus)
	if s, ok := errorStatus[w.Error.Type]; ok {
		status, typ = s, w.Error.Type
	}
	msg := w.Error.Message
	if msg == "" {
		msg = fmt.Sprintf("anthropic returned HTTP %d", fallbackStatus)
	}
	return &chat.Error{Status: status, Type: typ, Message: msg}
}

func upstreamError(resp *http.Response) *chat.Error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var w wireError
	_ = json.Unmarshal(b, &w)
	e := fromWire(w, resp.StatusCode)
	if _, known := errorStatus[w.Error.Type]; !known {
		// Trust the status over a body that is not Anthropic's (a proxy's
		// HTML page, say).
		e.Status, e.Type = chat.StatusFromUpstream(resp.StatusCode)
		if resp.StatusCode == 529 {
			e.Status = 529
		}
	}
	e.RetryAfter = chat.RetryAfter(resp.Header, time.Now())
	return e
}

// stopReasons maps Anthropic stop reasons to OpenAI finish reasons.
var stopReasons = map[string]string{
	"end_turn":                      chat.FinishStop,
	"stop_sequence":                 chat.FinishStop,
	"pause_turn":                    chat.FinishStop,
	"max_tokens":                    chat.FinishLength,
	"model_context_window_exceeded": chat.FinishLength,
	"tool_use":                      chat.FinishToolCalls,
	"refusal":                       chat.FinishContentFilter,
}

type toolState struct {
	index   int
	hasArgs bool
}

// streamTranslator turns Messages events into OpenAI chunks.
type streamTranslator struct {
	out       chat.Sink
	model     string
	tools     map[int]*toolState // by content block index
	nextTool  int                // OpenAI tool-call indices count tool blocks only
	stop      string
	usage     chat.Usage
	cacheRead int
}

type event struct {
	Type    string `json:"type"`
	Index   int    `json:"index"`
	Message struct {
		Model string `json:"model"`
		Usage usage  `json:"usage"`
	} `json:"message"`
	ContentBlock struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Name string `json:"name"`
		Text string `json:"text"`
	} `json:"content_block"`
	Delta struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		PartialJSON string `json:"partial_json"`
		Thinking    string `json:"thinking"`
		StopReason  string `json:"stop_reason"`
	} `json:"delta"`
	Usage *usage `json:"usage"`
}

type usage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

func (t *streamTranslator) run(body io.Reader) error {
	r := sse.NewReader(body)
	for {
		ev, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return chat.AsError(fmt.Errorf("anthropic stream ended before message_stop: %w", err))
		}
		done, err := t.handle(ev.Data)
		if err != nil || done {
			return err
		}
	}
}

// handle processes one event; done is true after message_stop.
func (t *streamTranslator) handle(data []byte) (done bool, err error) {
	var ev event
	if err := json.Unmarshal(data, &ev); err != nil {
		return false, chat.AsError(fmt.Errorf("anthropic sent an invalid event: %w", err))
	}
	switch ev.Type {
	case "message_start":
		t.model = ev.Message.Model
		t.addUsage(ev.Message.Usage)
		c := &chat.Chunk{Model: t.model, Choices: []chat.ChunkChoice{{Delta: chat.Delta{Role: "assistant", Content: chat.Ptr("")}}}}
		return false, t.out.Send(c)
	case "content_block_start":
		switch ev.ContentBlock.Type {
		case "tool_use":
			ts := &toolState{index: t.nextTool}
			t.nextTool++
			t.tools[ev.Index] = ts
			return false, t.sendTool(chat.ToolCall{Index: chat.Ptr(ts.index), ID: ev.ContentBlock.ID, Type: "function",
				Function: chat.FunctionCall{Name: ev.ContentBlock.Name}})
		case "text":
			if ev.ContentBlock.Text != "" {
				return false, t.out.Send(chat.TextChunk(ev.ContentBlock.Text))
			}
		}
		t.out.Progress()
	case "content_block_delta":
		switch ev.Delta.Type {
		case "text_delta":
			return false, t.out.Send(chat.TextChunk(ev.Delta.Text))
		case "thinking_delta":
			return false, t.out.Send(chat.ReasoningChunk(ev.Delta.Thinking))
		case "input_json_delta":
			ts := t.tools[ev.Index]
			if ts == nil {
				return false, chat.AsError(fmt.Errorf("anthropic sent arguments for block %d, which is not a tool_use", ev.Index))
			}
			if ev.Delta.PartialJSON == "" {
				t.out.Progress()
				return false, nil
			}
			ts.hasArgs = true
			// Fragments are forwarded verbatim: they are not JSON on their own.
			return false, t.sendTool(chat.ToolCall{Index: chat.Ptr(ts.index), Function: chat.FunctionCall{Arguments: ev.Delta.PartialJSON}})
		}
		t.out.Progress() // signature deltas have no OpenAI counterpart
	case "content_block_stop":
		if ts := t.tools[ev.Index]; ts != nil && !ts.hasArgs {
			// A tool without input streams no fragment; "" is not valid JSON.
			return false, t.sendTool(chat.ToolCall{Index: chat.Ptr(ts.index), Function: chat.FunctionCall{Arguments: "{}"}})
		}
		t.out.Progress()
	case "message_delta":
		if ev.Delta.StopReason != "" {
			t.stop = ev.Delta.StopReason
		}
		if ev.Usage != nil {
			t.addUsage(*ev.Usage)
		}
		t.out.Progress()
	case "message_stop":
		finish, ok := stopReasons[t.stop]
		if !ok {
			finish = chat.FinishStop
		}
		if t.nextTool > 0 && finish == chat.FinishStop {
			finish = chat.FinishToolCalls
		}
		if err := t.out.Send(chat.FinishChunk(finish)); err != nil {
			return false, err
		}
		u := t.usage
		if t.cacheRead > 0 {
			u.PromptTokensDetails = &chat.PromptTokensDetails{CachedTokens: t.cacheRead}
		}
		return true, t.out.Send(chat.UsageChunk(u))
	case "error":
		var w wireError
		_ = json.Unmarshal(data, &w)
		return false, fromWire(w, http.StatusBadGateway)
	default: // ping and event types added later
		t.out.Progress()
	}
	return false, nil
}

func (t *streamTranslator) sendTool(tc chat.ToolCall) error {
	return t.out.Send(&chat.Chunk{Choices: []chat.ChunkChoice{{Delta: chat.Delta{ToolCalls: []chat.ToolCall{tc}}}}})
}

// addUsage folds an event's usage in. Anthropic's counts are cumulative, so
// a later non-zero value replaces the earlier one; the prompt is input plus
// both cache counts, as OpenAI counts cached tokens inside prompt_tokens.
func (t *streamTranslator) addUsage(u usage) {
	if u.InputTokens > 0 || u.CacheReadInputTokens > 0 || u.CacheCreationInputTokens > 0 {
		t.usage.PromptTokens = u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens
		t.cacheRead = u.CacheReadInputTokens
	}
	if u.OutputTokens > 0 {
		t.usage.CompletionTokens = u.OutputTokens
	}
}
