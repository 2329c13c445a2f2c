// Package cursor is the provider backed by Cursor's agent CLI: each request
// spawns `cursor-agent --print --output-format stream-json
// --stream-partial-output`, writes the conversation to its stdin, and turns
// its NDJSON events into chat chunks. The process is killed (its whole
// process group) when the client leaves or a timeout fires, and a semaphore
// caps how many run at once.
//
// Cursor runs its own tools inside the agent; they are not exposed as OpenAI
// tool calls (the client would run them a second time), and the tools a
// client offers are not passed on.
package cursor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/config"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/chat"
)

// Config is the cursor section of the proxy configuration.
type Config struct {
	AgentPath     config.Path   `mapstructure:"agent_path" doc:"cursor-agent binary; empty: cursor-agent, then agent, on $PATH or in ~/.local/bin"`
	Workspace     config.Path   `mapstructure:"workspace" doc:"directory the agent works in (created if missing); deliberately not $HOME"`
	Mode          string        `mapstructure:"mode" doc:"cursor-agent --mode: ask (read-only) or plan; empty runs the full agent, which may edit files and run commands in the workspace"`
	APIKey        config.Secret `mapstructure:"api_key" doc:"Cursor API key passed to the agent as $CURSOR_API_KEY (also read from $CURSOR_API_KEY); empty: the agent's own login"`
	MaxConcurrent int           `mapstructure:"max_concurrent" doc:"most agent processes running at once"`
	QueueTimeout  time.Duration `mapstructure:"queue_timeout" doc:"how long a request waits for a free slot before it gets 429"`
	KillGrace     time.Duration `mapstructure:"kill_grace" doc:"time between SIGTERM and SIGKILL when a request is aborted"`
	Models        []chat.Model  `mapstructure:"models" doc:"models offered (Cursor model ids, e.g. auto, sonnet-4.5); the first is the default"`
}

// Defaults returns the default cursor section.
func Defaults() Config {
	return Config{
		Workspace:     "~/.local/share/qubes-claw/cursor-workspace",
		Mode:          "ask",
		MaxConcurrent: 3,
		QueueTimeout:  30 * time.Second,
		KillGrace:     3 * time.Second,
		Models: []chat.Model{
			{ID: "auto", Name: "Cursor Auto", ContextWindow: 200000, MaxTokens: 8192},
			{ID: "sonnet-4.5-thinking", Name: "Claude Sonnet 4.5 Thinking", ContextWindow: 200000, MaxTokens: 8192, Reasoning: true},
			{ID: "opus-4.6", Name: "Claude Opus 4.6", ContextWindow: 200000, MaxTokens: 8192},
			{ID: "gpt-5.3-codex", Name: "GPT-5.3 Codex", ContextWindow: 200000, MaxTokens: 8192},
		},
	}
}

// Validate checks the section.
func (c Config) Validate() error {
	if c.MaxConcurrent < 1 {
		return errors.New("cursor.max_concurrent must be at least 1")
	}
	if c.QueueTimeout <= 0 || c.KillGrace <= 0 {
		return errors.New("cursor.queue_timeout and cursor.kill_grace must be positive")
	}
	switch c.Mode {
	case "", "ask", "plan":
		return nil
	}
	return fmt.Errorf("cursor.mode: %q is not ask, plan or empty", c.Mode)
}

// Provider runs cursor-agent.
type Provider struct {
	cfg   Config
	slots chan struct{}
	home  string
	// lookPath finds a binary on $PATH (tests replace it).
	lookPath func(string) (string, error)
}

// New returns the provider; home is the user's home directory, where the
// agent's login and ~/.local/bin live.
func New(cfg Config, home string) *Provider {
	return &Provider{cfg: cfg, slots: make(chan struct{}, cfg.MaxConcurrent), home: home, lookPath: exec.LookPath}
}

// Name implements chat.Provider.
func (p *Provider) Name() string { return "cursor" }

// Models implements chat.Provider.
func (p *Provider) Models() []chat.Model { return p.cfg.Models }

// Authenticated reports an API key or a login file of the agent.
func (p *Provider) Authenticated() bool {
	if p.cfg.APIKey != "" {
		return true
	}
	for _, f := range []string{".cursor/cli-config.json", ".cursor/auth.json", ".config/cursor/auth.json", ".config/cursor/cli-config.json"} {
		if _, err := os.Stat(filepath.Join(p.home, f)); err == nil {
			return true
		}
	}
	return false
}

// ErrNoAgent is wrapped when no cursor-agent binary can be found.
var ErrNoAgent = errors.New("cursor-agent not found")

// Agent returns the binary to run: the configured path, else cursor-agent or
// its newer name agent, on $PATH or in ~/.local/bin.
func (p *Provider) Agent() (string, error) {
	if p.cfg.AgentPath != "" {
		if _, err := os.Stat(string(p.cfg.AgentPath)); err != nil {
			return "", fmt.Errorf("cursor.agent_path: %w", err)
		}
		return string(p.cfg.AgentPath), nil
	}
	for _, name := range []string{"cursor-agent", "agent"} {
		if path, err := p.lookPath(name); err == nil {
			return path, nil
		}
		if path := filepath.Join(p.home, ".local/bin", name); isExecutable(path) {
			return path, nil
		}
	}
	return "", fmt.Errorf("%w (install the Cursor CLI or set cursor.agent_path)", ErrNoAgent)
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Check runs `cursor-agent status`, which fails when the agent is not
// logged in.
func (p *Provider) Check(ctx context.Context) error {
	agent, err := p.Agent()
	if err != nil {
		return &chat.Error{Status: http.StatusServiceUnavailable, Type: chat.TypeAPI, Message: err.Error()}
	}
	cmd := exec.CommandContext(ctx, agent, "status")
	cmd.Env = p.env()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return chat.AsError(ctx.Err())
		}
		return classify(stderr.String(), err)
	}
	return nil
}

func (p *Provider) env() []string {
	env := os.Environ()
	if p.cfg.APIKey != "" {
		env = append(env, "CURSOR_API_KEY="+p.cfg.APIKey.Reveal())
	}
	return env
}

// Chat implements chat.Provider.
func (p *Provider) Chat(ctx context.Context, req *chat.Request, out chat.Sink) error {
	release, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	agent, err := p.Agent()
	if err != nil {
		return &chat.Error{Status: http.StatusServiceUnavailable, Type: chat.TypeAPI, Message: err.Error()}
	}
	ws := string(p.cfg.Workspace)
	if err := os.MkdirAll(ws, 0o700); err != nil {
		return &chat.Error{Status: http.StatusInternalServerError, Type: chat.TypeAPI, Message: "cursor workspace: " + err.Error()}
	}
	args := []string{"--print", "--output-format", "stream-json", "--stream-partial-output", "--trust", "--workspace", ws, "--model", req.Model}
	if p.cfg.Mode != "" {
		args = append(args, "--mode", p.cfg.Mode)
	}
	cmd := exec.Command(agent, args...)
	cmd.Dir = ws
	cmd.Env = p.env()
	// The prompt goes on stdin: one argv string is capped at 128 KiB.
	cmd.Stdin = strings.NewReader(Prompt(req.Messages))
	stderr := &tailBuffer{max: 16 << 10}
	cmd.Stderr = stderr
	// Its own process group, so the agent's children die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return &chat.Error{Status: http.StatusServiceUnavailable, Type: chat.TypeAPI, Message: "starting cursor-agent: " + err.Error()}
	}
	proc := &process{cmd: cmd, grace: p.cfg.KillGrace, exited: make(chan struct{})}
	go proc.killOn(ctx)

	ev := &events{out: out}
	perr := ev.read(stdout)
	switch {
	case perr != nil:
		proc.stop() // the client is gone or the output is unreadable
	case ev.result != nil:
		// The answer is complete; an agent that lingers after its result
		// gets the grace period to exit on its own.
		t := time.AfterFunc(p.cfg.KillGrace, proc.stop)
		defer t.Stop()
	}
	_, _ = io.Copy(io.Discard, stdout)
	werr := cmd.Wait()
	close(proc.exited)
	proc.reapGroup()

	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case perr != nil:
		return perr
	case ev.result == nil:
		return classify(stderr.String(), exitError(werr, "cursor-agent ended without a result"))
	case ev.result.IsError || (ev.result.Subtype != "" && ev.result.Subtype != "success"):
		return classify(ev.result.Result+"\n"+stderr.String(), errors.New("cursor-agent reported an error"))
	}
	return ev.finish()
}

func exitError(err error, fallback string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", fallback, err)
	}
	return errors.New(fallback)
}

// acquire takes a concurrency slot, waiting up to QueueTimeout.
func (p *Provider) acquire(ctx context.Context) (func(), error) {
	t := time.NewTimer(p.cfg.QueueTimeout)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return func() { <-p.slots }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	case <-t.C:
		return nil, &chat.Error{Status: http.StatusTooManyRequests, Type: chat.TypeRateLimit, Code: "concurrency_limit",
			Message:    fmt.Sprintf("all %d cursor-agent slots are busy (cursor.max_concurrent)", p.cfg.MaxConcurrent),
			RetryAfter: 5 * time.Second}
	}
}

// process ends an agent: SIGTERM to its group, SIGKILL after the grace.
type process struct {
	cmd    *exec.Cmd
	grace  time.Duration
	once   sync.Once
	exited chan struct{}
}

func (p *process) killOn(ctx context.Context) {
	select {
	case <-ctx.Done():
		p.stop()
	case <-p.exited:
	}
}

func (p *process) stop() {
	p.once.Do(func() {
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		go func() {
			select {
			case <-p.exited:
			case <-time.After(p.grace):
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			}
		}()
	})
}

// reapGroup kills what is left of the group once the agent exited (children
// that outlived it would otherwise keep running unsupervised).
func (p *process) reapGroup() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// event is one NDJSON line of cursor-agent's stream-json output.
type event struct {
	Type        string `json:"type"`
	Subtype     string `json:"subtype"`
	Text        string `json:"text"`
	TimestampMS *int64 `json:"timestamp_ms"`
	ModelCallID string `json:"model_call_id"`
	Message     struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	} `json:"message"`
	Result  string `json:"result"`
	IsError bool   `json:"is_error"`
	Usage   *struct {
		InputTokens     int `json:"inputTokens"`
		OutputTokens    int `json:"outputTokens"`
		CacheReadTokens int `json:"cacheReadTokens"`
	} `json:"usage"`
}

// events turns the agent's events into chunks.
type events struct {
	out      chat.Sink
	streamed strings.Builder // text sent so far
	deltas   bool            // genuine partial-output deltas were seen
	result   *event
}

// maxLine bounds one NDJSON line (a consolidated answer can be long).
const maxLine = 16 << 20

func (e *events) read(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			if herr := e.handle(line); herr != nil {
				return herr
			}
			if e.result != nil {
				return nil
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return chat.AsError(fmt.Errorf("reading cursor-agent output: %w", err))
		}
	}
}

func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > maxLine {
			return nil, errors.New("cursor-agent output line too long")
		}
		line = append(line, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		return bytes.TrimSpace(line), err
	}
}

// handle processes one line. With --stream-partial-output an answer comes
// several times: as deltas (timestamp_ms, no model_call_id), as a mid-turn
// consolidation (with model_call_id) and as a final consolidation (neither).
// Only the deltas are streamed; a consolidation counts only when no delta
// came, and result.result only when nothing was streamed at all.
func (e *events) handle(line []byte) error {
	var ev event
	if json.Unmarshal(line, &ev) != nil {
		e.out.Progress() // not an event (a stray log line): skip it
		return nil
	}
	switch ev.Type {
	case "thinking":
		if ev.Subtype == "delta" && ev.Text != "" {
			return e.out.Send(chat.ReasoningChunk(ev.Text))
		}
	case "assistant":
		var text strings.Builder
		for _, c := range ev.Message.Content {
			if c.Type == "text" {
				text.WriteString(c.Text)
			}
		}
		switch {
		case ev.ModelCallID != "":
			// mid-turn consolidation of text already streamed
		case ev.TimestampMS != nil:
			e.deltas = true
			return e.send(text.String())
		case !e.deltas:
			return e.send(text.String())
		}
	case "result":
		e.result = &ev
		return nil
	}
	e.out.Progress()
	return nil
}

func (e *events) send(text string) error {
	if text == "" {
		e.out.Progress()
		return nil
	}
	e.streamed.WriteString(text)
	return e.out.Send(chat.TextChunk(text))
}

// finish sends what the result adds, the finish reason and the usage.
func (e *events) finish() error {
	full, sent := e.result.Result, e.streamed.String()
	switch {
	case sent == "" && full != "":
		if err := e.send(full); err != nil {
			return err
		}
	case len(full) > len(sent) && strings.HasPrefix(full, sent):
		// The stream missed a tail the authoritative result has.
		if err := e.send(full[len(sent):]); err != nil {
			return err
		}
	}
	if err := e.out.Send(chat.FinishChunk(chat.FinishStop)); err != nil {
		return err
	}
	if u := e.result.Usage; u != nil {
		usage := chat.Usage{PromptTokens: u.InputTokens + u.CacheReadTokens, CompletionTokens: u.OutputTokens}
		if u.CacheReadTokens > 0 {
			usage.PromptTokensDetails = &chat.PromptTokensDetails{CachedTokens: u.CacheReadTokens}
		}
		return e.out.Send(chat.UsageChunk(usage))
	}
	return nil
}

var (
	ansiRE  = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)
	classes = []struct {
		re     *regexp.Regexp
		status int
		typ    string
		code   string
		hint   string
	}{
		{regexp.MustCompile(`\b(not logged in|unauthori[sz]ed|authentication (failed|required)|log ?in required|please (run .*)?log ?in|invalid api key)\b`),
			http.StatusUnauthorized, chat.TypeAuthentication, "cursor_auth", "run `cursor-agent login` in the VM or set cursor.api_key"},
		{regexp.MustCompile(`\b(usage limit|quota|rate limit|too many requests)\b`),
			http.StatusTooManyRequests, chat.TypeRateLimit, "cursor_usage_limit", "check the plan's usage at cursor.com/settings"},
		{regexp.MustCompile(`\b(model not found|invalid model|unknown model|cannot use this model|model .* not (available|supported))\b`),
			http.StatusNotFound, chat.TypeNotFound, "model_not_found", "list the models with `cursor-agent --list-models`"},
		{regexp.MustCompile(`\b(econnrefused|econnreset|enotfound|connection refused|fetch failed|network error|getaddrinfo)\b`),
			http.StatusBadGateway, chat.TypeConnection, "cursor_network", ""},
	}
)

// classify turns the agent's error output into an error with the right
// status: a login problem is 401, an exhausted plan 429, a bad model 404, a
// network failure or anything else 502.
func classify(output string, cause error) *chat.Error {
	text := strings.TrimSpace(ansiRE.ReplaceAllString(output, ""))
	lower := strings.ToLower(text)
	msg := lastLines(text, 3)
	if msg == "" {
		msg = "cursor-agent failed without a message"
	}
	for _, c := range classes {
		if c.re.MatchString(lower) {
			if c.hint != "" {
				msg += " (" + c.hint + ")"
			}
			e := &chat.Error{Status: c.status, Type: c.typ, Code: c.code, Message: msg, Err: cause}
			if c.status == http.StatusTooManyRequests {
				e.RetryAfter = time.Minute
			}
			return e
		}
	}
	return &chat.Error{Status: http.StatusBadGateway, Type: chat.TypeAPI, Code: "cursor_agent_failed", Message: msg, Err: cause}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	var keep []string
	for i := len(lines) - 1; i >= 0 && len(keep) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			keep = append([]string{l}, keep...)
		}
	}
	out := strings.Join(keep, " ")
	if len(out) > 500 {
		out = out[len(out)-500:]
	}
	return out
}
