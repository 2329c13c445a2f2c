package sim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

// Invocation is one line of the invocation log: a simulated command run, or a
// process spawned inside a domain. Benchmarks count these (qrexec calls per
// operation, processes per connection), so every simulated tool records itself.
type Invocation struct {
	// Kind is "tool" for a simulated command, "spawn" for a process started in a
	// domain by its supervisor.
	Kind     string    `json:"kind"`
	Tool     string    `json:"tool,omitempty"`
	Domain   string    `json:"domain"`
	Argv     []string  `json:"argv"`
	Start    time.Time `json:"start"`
	Duration float64   `json:"duration_ms"`
	Exit     int       `json:"exit"`
}

// Record appends inv to the invocation log. One write with O_APPEND keeps
// concurrent writers from interleaving lines. Errors are ignored on purpose:
// accounting must never change the behaviour of the simulated tool.
func (m *Machine) Record(inv Invocation) {
	// In UTC: formatting in the local zone would read /etc/localtime in
	// every tool process, only to log.
	inv.Start = inv.Start.UTC()
	b, err := json.Marshal(inv)
	if err != nil {
		return
	}
	p := m.InvocationLog()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if os.IsNotExist(err) {
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		f, err = os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	}
	if err != nil {
		return
	}
	_, _ = f.Write(append(b, '\n'))
	_ = f.Close()
}

// ReadInvocations returns every recorded invocation, oldest first.
func (m *Machine) ReadInvocations() ([]Invocation, error) {
	f, err := os.Open(m.InvocationLog())
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Invocation
	dec := json.NewDecoder(f)
	for dec.More() {
		var inv Invocation
		if err := dec.Decode(&inv); err != nil {
			return out, err
		}
		out = append(out, inv)
	}
	return out, nil
}
