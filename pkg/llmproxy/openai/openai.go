// Package openai is the provider for OpenAI and any server speaking its Chat
// Completions API (Ollama's /v1 uses it too): the client's request is
// forwarded with its unmodelled fields intact, the model id rewritten and the
// key injected; the answer comes back as chat chunks.
package openai

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

// Config is the openai section of the proxy configuration.
type Config struct {
	BaseURL string        `mapstructure:"base_url" doc:"OpenAI API base URL, up to and including /v1"`
	APIKey  config.Secret `mapstructure:"api_key" doc:"OpenAI API key (also read from $OPENAI_API_KEY)"`
	Models  []chat.Model  `mapstructure:"models" doc:"models offered (id, name, upstream, context_window, max_tokens, reasoning, images); the first is the default"`
}

// Defaults returns the default openai section.
func Defaults() Config {
	return Config{
		BaseURL: "https://api.openai.com/v1",
		Models: []chat.Model{
			{ID: "gpt-4o", Name: "GPT-4o", ContextWindow: 128000, MaxTokens: 16384, Images: true},
			{ID: "gpt-4o-mini", Name: "GPT-4o mini", ContextWindow: 128000, MaxTokens: 16384, Images: true},
			{ID: "o3-mini", Name: "o3-mini", ContextWindow: 200000, MaxTokens: 100000, Reasoning: true},
		},
	}
}

// Provider talks to one OpenAI-compatible endpoint.
type Provider struct {
	name    string
	baseURL string
	key     string
	models  []chat.Model
	client  *http.Client
	// CheckPath is the path (under baseURL) the deep health check GETs.
	CheckPath string
	// NeedsKey says whether the provider is unusable without a key.
	NeedsKey bool
}

// New returns a provider named name for the endpoint at baseURL (ending in
// /v1). key may be empty for servers that need none.
func New(name, baseURL, key string, models []chat.Model, client *http.Client) *Provider {
	return &Provider{
		name: name, baseURL: strings.TrimRight(baseURL, "/"), key: key, models: models,
		client: client, CheckPath: "/models", NeedsKey: true,
	}
}

// Name implements chat.Provider.
func (p *Provider) Name() string { return p.name }

// Models implements chat.Provider.
func (p *Provider) Models() []chat.Model { return p.models }

// Authenticated implements chat.Provider.
func (p *Provider) Authenticated() bool { return p.key != "" || !p.NeedsKey }

// Check lists the upstream's models, which proves reachability and the key.
func (p *Provider) Check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.baseURL+p.CheckPath, nil)
	if err != nil {
		return err
	}
	p.authorize(req)
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

func (p *Provider) authorize(req *http.Request) {
	if p.key != "" {
		req.Header.Set("Authorization", "Bearer "+p.key)
	}
}

// Chat implements chat.Provider. A streaming client gets an upstream stream
// (with usage requested, so it can be logged); a non-streaming one a
// non-streamed upstream call, because some models may only be streamed by
// verified organisations.
func (p *Provider) Chat(ctx context.Context, req *chat.Request, out chat.Sink) error {
	body, err := p.body(req)
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, p.baseURL+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/json")
	if req.Stream {
		hreq.Header.Set("Accept", "text/event-stream")
	}
	p.authorize(hreq)
	resp, err := p.client.Do(hreq)
	if err != nil {
		return chat.AsError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return upstreamError(resp)
	}
	if !req.Stream {
		return p.relayResponse(resp.Body, out)
	}
	return relayStream(resp.Body, out)
}

// body is the client's request with the model id, stream flag and usage
// option set for upstream; every other field passes through untouched.
func (p *Provider) body(req *chat.Request) ([]byte, error) {
	m := make(map[string]json.RawMessage, len(req.Raw)+2)
	for k, v := range req.Raw {
		m[k] = v
	}
	set := func(k string, v any) {
		b, _ := json.Marshal(v)
		m[k] = b
	}
	set("model", req.Model)
	set("stream", req.Stream)
	if req.Stream {
		set("stream_options", chat.StreamOptions{IncludeUsage: true})
	} else {
		delete(m, "stream_options")
	}
	return json.Marshal(m)
}

// relayStream forwards upstream chunks until [DONE].
func relayStream(body io.Reader, out chat.Sink) error {
	r := sse.NewReader(body)
	finished := false
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) && finished {
			// Some compatible servers close without [DONE] after the finish.
			return nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return chat.AsError(fmt.Errorf("reading upstream stream: %w", err))
		}
		if bytes.Equal(ev.Data, sse.Done) {
			if !finished {
				return chat.AsError(fmt.Errorf("upstream stream ended without a finish reason: %w", io.ErrUnexpectedEOF))
			}
			return nil
		}
		if e := streamError(ev.Data); e != nil {
			return e
		}
		var c chat.Chunk
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			return chat.AsError(fmt.Errorf("upstream sent an invalid chunk: %w", err))
		}
		for _, ch := range c.Choices {
			if ch.FinishReason != nil && *ch.FinishReason != "" {
				finished = true
			}
		}
		if err := out.Send(&c); err != nil {
			return err
		}
	}
}

// relayResponse turns a non-streamed response into the equivalent chunks.
func (p *Provider) relayResponse(body io.Reader, out chat.Sink) error {
	var r chat.Response
	if err := json.NewDecoder(io.LimitReader(body, 64<<20)).Decode(&r); err != nil {
		return chat.AsError(fmt.Errorf("upstream sent an invalid response: %w", err))
	}
	if len(r.Choices) == 0 {
		return chat.AsError(errors.New("upstream response has no choices"))
	}
	msg := r.Choices[0].Message
	d := chat.Delta{Role: "assistant", Content: msg.Content, ReasoningContent: msg.ReasoningContent, Refusal: msg.Refusal}
	for i, tc := range msg.ToolCalls {
		tc.Index = chat.Ptr(i)
		d.ToolCalls = append(d.ToolCalls, tc)
	}
	if err := out.Send(&chat.Chunk{Model: r.Model, SystemFingerprint: r.SystemFingerprint,
		Choices: []chat.ChunkChoice{{Delta: d}}}); err != nil {
		return err
	}
	finish := r.Choices[0].FinishReason
	if finish == "" {
		finish = chat.FinishStop
	}
	if err := out.Send(chat.FinishChunk(finish)); err != nil {
		return err
	}
	if r.Usage != nil {
		return out.Send(chat.UsageChunk(*r.Usage))
	}
	return nil
}

// wireError is OpenAI's error object.
type wireError struct {
	Error *struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Param   *string         `json:"param"`
		Code    json.RawMessage `json:"code"`
	} `json:"error"`
}

// streamError recognises an error frame inside a stream.
func streamError(data []byte) *chat.Error {
	if !bytes.Contains(data, []byte(`"error"`)) {
		return nil
	}
	var w wireError
	if json.Unmarshal(data, &w) != nil || w.Error == nil {
		return nil
	}
	e := &chat.Error{Status: http.StatusBadGateway, Type: w.Error.Type, Message: w.Error.Message}
	if e.Type == "" {
		e.Type = chat.TypeAPI
	}
	e.Code = codeString(w.Error.Code)
	return e
}

// upstreamError converts a non-200 upstream response.
func upstreamError(resp *http.Response) *chat.Error {
	status, typ := chat.StatusFromUpstream(resp.StatusCode)
	e := &chat.Error{Status: status, Type: typ, RetryAfter: chat.RetryAfter(resp.Header, time.Now()),
		Message: fmt.Sprintf("upstream returned HTTP %d", resp.StatusCode)}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var w wireError
	if json.Unmarshal(b, &w) == nil && w.Error != nil {
		if w.Error.Message != "" {
			e.Message = w.Error.Message
		}
		if w.Error.Type != "" {
			e.Type = w.Error.Type
		}
		if w.Error.Param != nil {
			e.Param = *w.Error.Param
		}
		e.Code = codeString(w.Error.Code)
	}
	return e
}

// codeString renders OpenAI's code, which is a string, a number or null.
func codeString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	if len(raw) > 0 && string(raw) != "null" {
		return string(raw)
	}
	return ""
}
