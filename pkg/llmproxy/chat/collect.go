package chat

import "strings"

// Collector assembles stream chunks into a non-streamed Response. It is the
// Sink of a non-streaming request.
type Collector struct {
	Model    string
	content  strings.Builder
	reason   strings.Builder
	refusal  strings.Builder
	hasText  bool
	calls    []ToolCall
	finish   string
	usage    *Usage
	progress func()
}

// NewCollector returns a Collector; progress is called on every event (it
// resets the server's idle timer) and may be nil.
func NewCollector(progress func()) *Collector { return &Collector{progress: progress} }

// Send implements Sink.
func (c *Collector) Send(ch *Chunk) error {
	c.Progress()
	if ch.Model != "" {
		c.Model = ch.Model
	}
	if ch.Usage != nil {
		u := *ch.Usage
		c.usage = &u
	}
	for _, choice := range ch.Choices {
		d := choice.Delta
		if d.Content != nil {
			c.hasText = c.hasText || *d.Content != ""
			c.content.WriteString(*d.Content)
		}
		c.reason.WriteString(d.ReasoningContent)
		if d.Refusal != nil {
			c.refusal.WriteString(*d.Refusal)
		}
		for _, tc := range d.ToolCalls {
			c.addCall(tc)
		}
		if choice.FinishReason != nil {
			c.finish = *choice.FinishReason
		}
	}
	return nil
}

// addCall merges a tool-call fragment: a new index starts a call, a known one
// extends its arguments.
func (c *Collector) addCall(tc ToolCall) {
	idx := len(c.calls)
	if tc.Index != nil {
		idx = *tc.Index
	}
	for i := range c.calls {
		if *c.calls[i].Index == idx {
			c.calls[i].Function.Arguments += tc.Function.Arguments
			if tc.Function.Name != "" {
				c.calls[i].Function.Name = tc.Function.Name
			}
			if tc.ID != "" {
				c.calls[i].ID = tc.ID
			}
			return
		}
	}
	tc.Index = Ptr(idx)
	if tc.Type == "" {
		tc.Type = "function"
	}
	c.calls = append(c.calls, tc)
}

// Progress implements Sink.
func (c *Collector) Progress() {
	if c.progress != nil {
		c.progress()
	}
}

// Finished reports whether a finish reason arrived.
func (c *Collector) Finished() bool { return c.finish != "" }

// Usage returns the usage seen, or nil.
func (c *Collector) Usage() *Usage { return c.usage }

// Response builds the response; id and created are stamped by the caller.
func (c *Collector) Response(id string, created int64, model string) *Response {
	if c.Model != "" {
		model = c.Model
	}
	msg := ResponseMessage{Role: "assistant", ReasoningContent: c.reason.String()}
	if c.hasText || len(c.calls) == 0 {
		msg.Content = Ptr(c.content.String())
	}
	if c.refusal.Len() > 0 {
		msg.Refusal = Ptr(c.refusal.String())
	}
	for _, tc := range c.calls {
		tc.Index = nil // non-streamed tool calls carry no index
		msg.ToolCalls = append(msg.ToolCalls, tc)
	}
	finish := c.finish
	if len(c.calls) > 0 && (finish == "" || finish == FinishStop) {
		finish = FinishToolCalls
	}
	if finish == "" {
		finish = FinishStop
	}
	return &Response{
		ID: id, Object: "chat.completion", Created: created, Model: model,
		Choices: []Choice{{Message: msg, FinishReason: finish, Logprobs: []byte("null")}},
		Usage:   c.usage,
	}
}
