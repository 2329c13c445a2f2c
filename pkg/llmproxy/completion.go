package llmproxy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/chat"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/sse"
)

// statusClientGone is logged (never sent) when the client left first, as
// nginx does.
const statusClientGone = 499

// sink is what a request's answer is written to: a stream to the client or
// a collector. reset discards everything held back so the next provider of
// the chain can start afresh; it is only valid while nothing was committed.
type sink interface {
	chat.Sink
	committed() bool
	reset()
	usage() *chat.Usage
}

// chatCompletions serves POST /v1/chat/completions.
func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := newID()
	w.Header().Set("X-Request-Id", id)
	rec := usageRecord{RequestID: id, Provider: s.chain[0].Name()}
	defer func() { s.logUsage(&rec, start) }()

	req, err := s.readRequest(w, r)
	if err != nil {
		e := chat.AsError(err)
		rec.Status, rec.Error = e.Status, e.Type
		writeError(w, e)
		return
	}
	rec.Model, rec.Stream = req.Model, req.Stream

	reqCtx := r.Context()
	ctx, cancelIdle := context.WithCancelCause(reqCtx)
	defer cancelIdle(nil)
	ctx, cancelTotal := context.WithTimeoutCause(ctx, s.cfg.Timeouts.Total, chat.ErrTotalTimeout)
	defer cancelTotal()
	idle := time.AfterFunc(s.cfg.Timeouts.Idle, func() { cancelIdle(chat.ErrIdleTimeout) })
	defer idle.Stop()
	touch := func() { idle.Reset(s.cfg.Timeouts.Idle) }

	var out sink
	var stream *streamWriter
	if req.Stream {
		stream = newStreamWriter(w, id, start, req.WantsUsage(), s.cfg.Timeouts.Heartbeat, touch)
		defer stream.close()
		out = stream
	} else {
		out = &collectSink{touch: touch}
	}

	var perr error
	for i, p := range s.chain {
		preq := *req
		model, err := resolveModel(p, req.Model, i == 0)
		if err != nil {
			perr = err
			break
		}
		preq.Model = model
		rec.Provider, rec.Upstream = p.Name(), model
		if stream != nil {
			stream.model = req.Model
			if stream.model == "" {
				stream.model = model
			}
		}
		perr = p.Chat(ctx, &preq, out)
		if perr == nil {
			break
		}
		perr = s.explain(ctx, reqCtx, perr)
		e := chat.AsError(perr)
		if out.committed() || reqCtx.Err() != nil || ctx.Err() != nil || !e.Retryable() || i == len(s.chain)-1 {
			break
		}
		s.log.WithFields(logrus.Fields{"request_id": id, "provider": p.Name(), "status": e.Status, "next": s.chain[i+1].Name()}).
			WithError(perr).Warn("provider failed before the first byte; falling back")
		rec.FallbackFrom = append(rec.FallbackFrom, p.Name())
		out.reset()
	}
	if u := out.usage(); u != nil {
		rec.PromptTokens, rec.CompletionTokens = u.PromptTokens, u.CompletionTokens
		if u.PromptTokensDetails != nil {
			rec.CachedTokens = u.PromptTokensDetails.CachedTokens
		}
	}

	switch {
	case perr != nil && reqCtx.Err() != nil:
		rec.Status, rec.Error = statusClientGone, "client_closed"
	case perr != nil:
		e := chat.AsError(perr)
		rec.Status, rec.Error = e.Status, e.Type
		s.log.WithFields(logrus.Fields{"request_id": id, "provider": rec.Provider}).WithError(perr).Warn("request failed")
		if stream != nil {
			if stream.committed() {
				// The status line is gone; the error travels as a frame.
				rec.Status = http.StatusOK
			}
			stream.fail(e)
		} else {
			writeError(w, e)
		}
	case stream != nil:
		rec.Status = http.StatusOK
		if err := stream.done(); err != nil {
			rec.Status, rec.Error = statusClientGone, "client_closed"
		}
	default:
		rec.Status = http.StatusOK
		c := out.(*collectSink)
		writeJSON(w, http.StatusOK, c.Response(id, start.Unix(), req.Model))
	}
	if stream != nil && !stream.firstByte.IsZero() {
		rec.FirstByteMS = stream.firstByte.Sub(start).Milliseconds()
	}
}

// explain replaces the error of a provider call the proxy aborted (idle or
// total timeout) by the reason, so the client learns why.
func (s *Server) explain(ctx, reqCtx context.Context, err error) error {
	if reqCtx.Err() != nil || ctx.Err() == nil {
		return err
	}
	cause := context.Cause(ctx)
	msg := "request exceeded timeouts.total (" + s.cfg.Timeouts.Total.String() + ")"
	if errors.Is(cause, chat.ErrIdleTimeout) {
		msg = "upstream sent nothing for timeouts.idle (" + s.cfg.Timeouts.Idle.String() + ")"
	}
	return &chat.Error{Status: http.StatusGatewayTimeout, Type: chat.TypeTimeout, Code: "timeout", Message: msg, Err: cause}
}

// readRequest reads and parses the body under the body deadline and size cap.
func (s *Server) readRequest(w http.ResponseWriter, r *http.Request) (*chat.Request, error) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(s.cfg.Timeouts.ReadBody))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	_ = rc.SetReadDeadline(time.Time{})
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, chat.Errorf(http.StatusRequestEntityTooLarge, chat.TypeInvalidRequest, "request_too_large",
			"request body exceeds max_body_bytes (%d)", s.cfg.MaxBodyBytes)
	case isTimeout(err):
		return nil, chat.Errorf(http.StatusRequestTimeout, chat.TypeTimeout, "timeout", "request body not received within timeouts.read_body")
	case err != nil:
		return nil, chat.Errorf(http.StatusBadRequest, chat.TypeInvalidRequest, "", "reading request body: %v", err)
	}
	return chat.ParseRequest(body)
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// resolveModel maps the client's model id to the provider's upstream id. A
// "provider/" prefix is accepted. The primary provider forwards ids it does
// not list (its upstream is the judge); a fallback provider cannot know the
// primary's ids, so it uses its own default model.
func resolveModel(p chat.Provider, requested string, primary bool) (string, error) {
	id := strings.TrimPrefix(requested, p.Name()+"/")
	models := p.Models()
	for _, m := range models {
		if m.ID == id {
			return m.UpstreamID(), nil
		}
	}
	if (id == "" || !primary) && len(models) > 0 {
		return models[0].UpstreamID(), nil
	}
	if id == "" {
		return "", chat.InvalidRequest("model", "model is required (provider %s lists no default model)", p.Name())
	}
	return id, nil
}

// collectSink gathers a non-streamed answer.
type collectSink struct {
	*chat.Collector
	touch func()
}

func (c *collectSink) lazy() {
	if c.Collector == nil {
		c.Collector = chat.NewCollector(c.touch)
	}
}
func (c *collectSink) Send(ch *chat.Chunk) error { c.lazy(); return c.Collector.Send(ch) }
func (c *collectSink) Progress()                 { c.lazy(); c.Collector.Progress() }
func (c *collectSink) committed() bool           { return false }
func (c *collectSink) reset()                    { c.Collector = nil }
func (c *collectSink) usage() *chat.Usage {
	if c.Collector == nil {
		return nil
	}
	return c.Collector.Usage()
}
func (c *collectSink) Response(id string, created int64, model string) *chat.Response {
	c.lazy()
	return c.Collector.Response(id, created, model)
}

// streamWriter streams chunks to the client as SSE. Until the first chunk
// with output arrives the response is not committed (chunks are held back),
// so a provider failing early can still be replaced by a fallback or turned
// into a proper HTTP status. A heartbeat comment keeps a silent stream open
// and, if nothing substantive came within one heartbeat, commits it.
type streamWriter struct {
	mu        sync.Mutex
	w         http.ResponseWriter
	rc        *http.ResponseController
	id        string
	created   int64
	model     string
	wantUsage bool
	touch     func()

	isCommitted bool
	held        []*chat.Chunk
	sentRole    bool
	toolCalls   bool
	used        *chat.Usage
	lastWrite   time.Time
	firstByte   time.Time
	writeErr    error

	stop chan struct{}
	wg   sync.WaitGroup
}

func newStreamWriter(w http.ResponseWriter, id string, start time.Time, wantUsage bool, heartbeat time.Duration, touch func()) *streamWriter {
	s := &streamWriter{w: w, rc: http.NewResponseController(w), id: id, created: start.Unix(), wantUsage: wantUsage,
		touch: touch, lastWrite: start, stop: make(chan struct{})}
	s.wg.Add(1)
	go s.heartbeat(heartbeat)
	return s
}

func (s *streamWriter) heartbeat(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.mu.Lock()
			if s.writeErr == nil && now.Sub(s.lastWrite) >= every {
				if !s.isCommitted {
					s.commit()
				}
				s.write(func(w io.Writer) error { return sse.WriteComment(w, "keep-alive") })
			}
			s.mu.Unlock()
		}
	}
}

func (s *streamWriter) close() {
	close(s.stop)
	s.wg.Wait()
}

// Send implements chat.Sink.
func (s *streamWriter) Send(c *chat.Chunk) error {
	s.touch()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writeErr != nil {
		return s.writeErr
	}
	if c.Usage != nil {
		u := *c.Usage
		s.used = &u
		if !s.wantUsage {
			c = stripUsage(c)
			if c == nil {
				return nil
			}
		}
	}
	c.ID, c.Object, c.Created = s.id, "chat.completion.chunk", s.created
	if c.Model != "" && !s.isCommitted && len(s.held) == 0 {
		s.model = c.Model
	}
	c.Model = s.model
	for i := range c.Choices {
		ch := &c.Choices[i]
		if !s.sentRole {
			ch.Delta.Role = "assistant"
			s.sentRole = true
		}
		if len(ch.Delta.ToolCalls) > 0 {
			s.toolCalls = true
		}
		// Clients that trust finish_reason stop their tool loop on "stop".
		if ch.FinishReason != nil && *ch.FinishReason == chat.FinishStop && s.toolCalls {
			ch.FinishReason = chat.Ptr(chat.FinishToolCalls)
		}
	}
	if !s.isCommitted {
		if !c.Substantive() {
			s.held = append(s.held, c)
			return nil
		}
		s.commit()
	}
	s.writeChunk(c)
	return s.writeErr
}

func stripUsage(c *chat.Chunk) *chat.Chunk {
	if len(c.Choices) == 0 {
		return nil
	}
	cp := *c
	cp.Usage = nil
	return &cp
}

// Progress implements chat.Sink.
func (s *streamWriter) Progress() { s.touch() }

func (s *streamWriter) committed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.isCommitted
}

func (s *streamWriter) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held, s.sentRole, s.toolCalls, s.used = nil, false, false, nil
}

func (s *streamWriter) usage() *chat.Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// commit sends the status line and the held chunks. Called with mu held.
func (s *streamWriter) commit() {
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	s.w.WriteHeader(http.StatusOK)
	s.isCommitted = true
	s.firstByte = time.Now()
	held := s.held
	s.held = nil
	for _, c := range held {
		s.writeChunk(c)
	}
	s.write(func(io.Writer) error { return nil }) // flush the status line
}

func (s *streamWriter) writeChunk(c *chat.Chunk) {
	b, err := json.Marshal(c)
	if err != nil {
		s.writeErr = err
		return
	}
	s.write(func(w io.Writer) error { return sse.WriteData(w, b) })
}

// write runs f on the response and flushes. Called with mu held.
func (s *streamWriter) write(f func(io.Writer) error) {
	if s.writeErr != nil {
		return
	}
	if err := f(s.w); err != nil {
		s.writeErr = err
		return
	}
	if err := s.rc.Flush(); err != nil {
		s.writeErr = err
		return
	}
	s.lastWrite = time.Now()
}

// done ends a successful stream.
func (s *streamWriter) done() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.isCommitted {
		s.commit()
	}
	s.write(func(w io.Writer) error { return sse.WriteData(w, sse.Done) })
	return s.writeErr
}

// fail ends a stream with an error: as an HTTP error while nothing was sent,
// otherwise as an error frame followed by [DONE].
func (s *streamWriter) fail(e *chat.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.isCommitted {
		s.isCommitted = true // nothing more may be written by the heartbeat
		s.writeErr = errors.New("stream replaced by an error response")
		writeError(s.w, e)
		return
	}
	s.write(func(w io.Writer) error { return sse.WriteData(w, e.Body()) })
	s.write(func(w io.Writer) error { return sse.WriteData(w, sse.Done) })
}

// usageRecord is one line of the usage log: never prompts, outputs or keys.
type usageRecord struct {
	Time             string   `json:"time"`
	RequestID        string   `json:"request_id"`
	Provider         string   `json:"provider"`
	Model            string   `json:"model"`
	Upstream         string   `json:"upstream_model,omitempty"`
	Stream           bool     `json:"stream"`
	Status           int      `json:"status"`
	Error            string   `json:"error,omitempty"`
	LatencyMS        int64    `json:"latency_ms"`
	FirstByteMS      int64    `json:"first_byte_ms,omitempty"`
	PromptTokens     int      `json:"prompt_tokens"`
	CompletionTokens int      `json:"completion_tokens"`
	CachedTokens     int      `json:"cached_tokens,omitempty"`
	FallbackFrom     []string `json:"fallback_from,omitempty"`
}

func (s *Server) logUsage(rec *usageRecord, start time.Time) {
	rec.Time = start.UTC().Format(time.RFC3339Nano)
	rec.LatencyMS = time.Since(start).Milliseconds()
	fields := logrus.Fields{
		"request_id": rec.RequestID, "provider": rec.Provider, "model": rec.Model, "stream": rec.Stream,
		"status": rec.Status, "latency_ms": rec.LatencyMS, "prompt_tokens": rec.PromptTokens,
		"completion_tokens": rec.CompletionTokens,
	}
	if rec.Error != "" {
		fields["error"] = rec.Error
	}
	if rec.FirstByteMS > 0 {
		fields["first_byte_ms"] = rec.FirstByteMS
	}
	if len(rec.FallbackFrom) > 0 {
		fields["fallback_from"] = strings.Join(rec.FallbackFrom, ",")
	}
	s.log.WithFields(fields).Info("chat completion")
	if s.usage == nil {
		return
	}
	b, _ := json.Marshal(rec)
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	if _, err := s.usage.Write(append(b, '\n')); err != nil {
		s.log.WithError(err).Warn("writing the usage log")
	}
}
