package webadmin

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Event is one audit line of qvm-remote-dom0, as the page shows it.
type Event struct {
	// Seq numbers events in arrival order; the SSE id, so a reconnecting
	// page resumes after the last line it has.
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Category string    `json:"category"`
	VM       string    `json:"vm,omitempty"`
	ID       string    `json:"id,omitempty"`
	Msg      string    `json:"msg"`
	// Detail is the remaining fields, key=value, for the line's tail.
	Detail string `json:"detail,omitempty"`
	fields map[string]string
}

// Categories the page colours; anything else is shown plain.
var Categories = []string{"EXEC", "AUTH-OK", "AUTH-FAIL", "REJECT", "DENY", "DONE", "DONE-FAIL", "TIMEOUT", "TRUNC", "CHANNEL"}

// ParseLine reads one log line of the daemon: logrus text ("key=value", as
// under systemd or in its log file) or JSON (log.format json). Lines that
// are not audit events (no "audit" field) return false. Values are kept as
// text: the page inserts them with textContent, never as markup.
func ParseLine(line string, now time.Time) (Event, bool) {
	line = strings.TrimSpace(line)
	var f map[string]string
	if strings.HasPrefix(line, "{") {
		f = parseJSON(line)
	} else {
		f = parseLogfmt(line)
	}
	cat := f["audit"]
	if cat == "" {
		return Event{}, false
	}
	e := Event{Category: cat, VM: f["vm"], ID: f["id"], Msg: f["msg"], Time: now, fields: f}
	if t, err := time.Parse(time.RFC3339Nano, f["time"]); err == nil {
		e.Time = t
	}
	var rest []string
	for _, k := range sortedKeys(f) {
		switch k {
		case "audit", "vm", "id", "msg", "time", "level", "component", "program":
			continue
		}
		v := f[k]
		if k == "cmd" {
			// audit.Command quotes the preview so control bytes cannot forge
			// lines; logrus quoted it once more.
			if u, err := strconv.Unquote(v); err == nil {
				v = u
			}
		}
		rest = append(rest, k+"="+v)
	}
	e.Detail = strings.Join(rest, " ")
	return e, true
}

// Cmd returns the command preview of an EXEC event.
func (e Event) Cmd() string {
	v := e.fields["cmd"]
	if u, err := strconv.Unquote(v); err == nil {
		return u
	}
	return v
}

func parseJSON(line string) map[string]string {
	var raw map[string]any
	if json.Unmarshal([]byte(line), &raw) != nil {
		return nil
	}
	f := make(map[string]string, len(raw))
	for k, v := range raw {
		switch x := v.(type) {
		case string:
			f[k] = x
		case float64:
			f[k] = strconv.FormatFloat(x, 'f', -1, 64)
		default:
			b, _ := json.Marshal(x)
			f[k] = string(b)
		}
	}
	return f
}

// parseLogfmt reads logrus' TextFormatter output: space-separated key=value
// pairs whose values are bare or Go-quoted (logrus uses %q).
func parseLogfmt(line string) map[string]string {
	f := map[string]string{}
	for line != "" {
		line = strings.TrimLeft(line, " ")
		eq := strings.IndexByte(line, '=')
		if eq <= 0 || strings.ContainsRune(line[:eq], ' ') {
			return f // not key=value any more: stop rather than guess
		}
		k := line[:eq]
		line = line[eq+1:]
		if strings.HasPrefix(line, `"`) {
			q, err := strconv.QuotedPrefix(line)
			if err != nil {
				return f
			}
			f[k], _ = strconv.Unquote(q)
			line = line[len(q):]
			continue
		}
		v, rest, _ := strings.Cut(line, " ")
		f[k] = v
		line = rest
	}
	return f
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Command is one command in the history: an EXEC and what ended it.
type Command struct {
	ID      string    `json:"id"`
	VM      string    `json:"vm"`
	Cmd     string    `json:"cmd"`
	Started time.Time `json:"started"`
	// Status is running, done, failed, timeout or interrupted.
	Status   string        `json:"status"`
	Exit     *int          `json:"exit,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Feed keeps the recent audit events and command history and fans new
// events out to subscribers (the open pages' event streams).
type Feed struct {
	mu      sync.Mutex
	max     int
	seq     uint64
	events  []Event
	history []*Command
	byID    map[string]*Command
	subs    map[chan struct{}]struct{}
	// refused counts refusals (AUTH-FAIL, REJECT, DENY) since start; with
	// in-flight commands it is the queue health the page can know.
	refused     int
	lastRefusal *Event
}

// NewFeed keeps up to max events and max commands.
func NewFeed(max int) *Feed {
	return &Feed{max: max, byID: map[string]*Command{}, subs: map[chan struct{}]struct{}{}}
}

// Add records one event and wakes subscribers.
func (f *Feed) Add(e Event) {
	f.mu.Lock()
	f.seq++
	e.Seq = f.seq
	f.events = append(f.events, e)
	if len(f.events) > f.max {
		f.events = append(f.events[:0:0], f.events[len(f.events)-f.max:]...)
	}
	f.track(e)
	for ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default: // already signalled; it will read everything new
		}
	}
	f.mu.Unlock()
}

func (f *Feed) track(e Event) {
	key := e.VM + "/" + e.ID
	c := f.byID[key]
	switch e.Category {
	case "EXEC":
		c = &Command{ID: e.ID, VM: e.VM, Cmd: e.Cmd(), Started: e.Time, Status: "running"}
		f.byID[key] = c
		f.history = append(f.history, c)
		if len(f.history) > f.max {
			old := f.history[0]
			delete(f.byID, old.VM+"/"+old.ID)
			f.history = f.history[1:]
		}
	case "DONE", "DONE-FAIL":
		if c == nil || c.Status != "running" {
			return // late delivery of a result, or a refusal of one we never saw start
		}
		c.Status = map[string]string{"DONE": "done", "DONE-FAIL": "failed"}[e.Category]
		if x, err := strconv.Atoi(e.fields["exit"]); err == nil {
			c.Exit = &x
		}
		if ms, err := strconv.ParseInt(e.fields["duration_ms"], 10, 64); err == nil {
			c.Duration = time.Duration(ms) * time.Millisecond
		} else {
			c.Duration = e.Time.Sub(c.Started)
		}
	case "TIMEOUT":
		if c != nil && c.Status == "running" {
			c.Status = "timeout"
			c.Duration = e.Time.Sub(c.Started)
		}
	case "REJECT":
		if c != nil && c.Status == "running" {
			c.Status = "interrupted"
			c.Duration = e.Time.Sub(c.Started)
		}
	}
	switch e.Category {
	case "AUTH-FAIL", "REJECT", "DENY":
		f.refused++
		ev := e
		f.lastRefusal = &ev
	}
}

// Since returns the events after seq (all kept events for 0), and the
// newest seq.
func (f *Feed) Since(seq uint64) ([]Event, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Event
	for _, e := range f.events {
		if e.Seq > seq {
			out = append(out, e)
		}
	}
	return out, f.seq
}

// History returns the commands, newest first.
func (f *Feed) History() []Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Command, 0, len(f.history))
	for i := len(f.history) - 1; i >= 0; i-- {
		out = append(out, *f.history[i])
	}
	return out
}

// QueueHealth is what the audit log says about the daemon's work.
type QueueHealth struct {
	Running     int    `json:"running"`
	Refused     int    `json:"refused"`
	LastRefusal string `json:"last_refusal,omitempty"`
}

// Health summarises the commands in flight and the refusals seen.
func (f *Feed) Health() QueueHealth {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := QueueHealth{Refused: f.refused}
	for _, c := range f.history {
		if c.Status == "running" {
			h.Running++
		}
	}
	if e := f.lastRefusal; e != nil {
		h.LastRefusal = e.Time.Format("15:04:05") + " " + e.Category + " " + e.VM + ": " + e.Msg
	}
	return h
}

// Subscribe returns a channel signalled when events arrive, and a cancel.
func (f *Feed) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	f.mu.Lock()
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	return ch, func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}
}
