// Package openclaw writes the OpenClaw gateway's configuration
// (~/.openclaw/openclaw.json) for the agent VM: a local gateway on loopback
// with a generated token, and one provider that points at qubes-claw-proxy.
// Only keys OpenClaw's strict schema accepts in every supported release are
// emitted, and never a provider API key: those stay in the proxy's config.
package openclaw

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Defaults of the generated file.
const (
	DefaultProviderID = "qubes"
	DefaultProxyURL   = "http://127.0.0.1:32125/v1"
	DefaultPort       = 18789
	// PlaceholderKey is sent as the provider's apiKey when the proxy has no
	// client token: OpenClaw wants a non-empty key even for local servers.
	PlaceholderKey = "qubes-claw-local"
)

// Model is one model entry of the generated provider.
type Model struct {
	ID            string
	Name          string
	Reasoning     bool
	Images        bool
	ContextWindow int
	MaxTokens     int
}

// Options describe the file to generate.
type Options struct {
	ProviderID string // OpenClaw's provider id; model refs are "ID/model"
	ProxyURL   string // the proxy's /v1 URL
	// ProxyToken is the proxy's client bearer token (not a provider key);
	// empty uses PlaceholderKey.
	ProxyToken   string
	Models       []Model
	DefaultModel string // a Model ID; empty: the first
	Port         int
	// GatewayToken authenticates clients of the gateway; empty generates one.
	GatewayToken string
}

// The file's shape. Every struct here is a strict object in OpenClaw's
// schema, so fields are added only when the reference lists them.
type file struct {
	Gateway gateway `json:"gateway"`
	Models  models  `json:"models"`
	Agents  agents  `json:"agents"`
}

type gateway struct {
	Mode string      `json:"mode"`
	Port int         `json:"port"`
	Bind string      `json:"bind"`
	Auth gatewayAuth `json:"auth"`
}

type gatewayAuth struct {
	Mode  string `json:"mode"`
	Token string `json:"token"`
}

type models struct {
	Mode      string              `json:"mode"`
	Providers map[string]provider `json:"providers"`
}

type provider struct {
	BaseURL string       `json:"baseUrl"`
	API     string       `json:"api"`
	APIKey  string       `json:"apiKey"`
	Models  []modelEntry `json:"models"`
}

type modelEntry struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	Reasoning     bool     `json:"reasoning"`
	Input         []string `json:"input"`
	ContextWindow int      `json:"contextWindow"`
	MaxTokens     int      `json:"maxTokens"`
	Compat        compat   `json:"compat"`
}

type compat struct {
	// The proxy sends the usage chunk; with this OpenClaw asks for it.
	SupportsUsageInStreaming bool `json:"supportsUsageInStreaming"`
}

type agents struct {
	Defaults agentDefaults `json:"defaults"`
}

type agentDefaults struct {
	Model agentModel `json:"model"`
}

type agentModel struct {
	Primary string `json:"primary"`
}

// Generate renders the configuration as indented JSON.
func Generate(o Options) ([]byte, error) {
	if o.ProviderID == "" {
		o.ProviderID = DefaultProviderID
	}
	if o.ProxyURL == "" {
		o.ProxyURL = DefaultProxyURL
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.ProxyToken == "" {
		o.ProxyToken = PlaceholderKey
	}
	if o.GatewayToken == "" {
		o.GatewayToken = NewToken()
	}
	if len(o.Models) == 0 {
		return nil, errors.New("openclaw config: the provider lists no models")
	}
	def := o.Models[0].ID
	var entries []modelEntry
	found := o.DefaultModel == ""
	for _, m := range o.Models {
		input := []string{"text"}
		if m.Images {
			input = append(input, "image")
		}
		name := m.Name
		if name == "" {
			name = m.ID
		}
		entries = append(entries, modelEntry{ID: m.ID, Name: name, Reasoning: m.Reasoning, Input: input,
			ContextWindow: orDefault(m.ContextWindow, 128000), MaxTokens: orDefault(m.MaxTokens, 8192),
			Compat: compat{SupportsUsageInStreaming: true}})
		if m.ID == o.DefaultModel {
			def, found = m.ID, true
		}
	}
	if !found {
		return nil, fmt.Errorf("openclaw config: default model %q is not in the provider's model list", o.DefaultModel)
	}
	f := file{
		Gateway: gateway{Mode: "local", Port: o.Port, Bind: "loopback", Auth: gatewayAuth{Mode: "token", Token: o.GatewayToken}},
		Models: models{Mode: "merge", Providers: map[string]provider{o.ProviderID: {
			BaseURL: o.ProxyURL, API: "openai-completions", APIKey: o.ProxyToken, Models: entries,
		}}},
		Agents: agents{Defaults: agentDefaults{Model: agentModel{Primary: o.ProviderID + "/" + def}}},
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func orDefault(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

// NewToken returns a random 32-byte hex token.
func NewToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// GatewayToken returns the gateway token of an existing file, so that
// regenerating the file does not lock out clients that know it. It returns
// "" when the file is absent or not plain JSON (JSON5 edits).
func GatewayToken(content []byte) string {
	var f struct {
		Gateway struct {
			Auth struct {
				Token string `json:"token"`
			} `json:"auth"`
		} `json:"gateway"`
	}
	if json.Unmarshal(content, &f) != nil {
		return ""
	}
	return f.Gateway.Auth.Token
}

// Outcome says what Write did.
type Outcome int

// Outcomes of Write.
const (
	Created Outcome = iota
	Updated
	Unchanged
	Overwritten // a user-edited file, replaced because of force (backup kept)
)

// ErrEdited is returned (with the difference) when the file was changed
// since qubes-claw wrote it and force is off.
var ErrEdited = errors.New("edited since qubes-claw wrote it")

// EditedError carries the difference between the file and what would be
// written.
type EditedError struct {
	Path string
	Diff string
}

func (e *EditedError) Error() string { return fmt.Sprintf("%s: %v", e.Path, ErrEdited) }
func (e *EditedError) Unwrap() error { return ErrEdited }

// StampPath is where Write records the digest of what it wrote, to tell its
// own file from a user-edited one.
func StampPath(path string) string { return path + ".qubes-claw.sha256" }

// Write installs content at path. A file qubes-claw wrote and nobody edited
// is replaced; an edited (or foreign) one is left alone and an *EditedError
// with the difference is returned, unless force is set, in which case it is
// kept as path.bak and replaced.
func Write(path string, content []byte, force bool) (Outcome, error) {
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return Created, install(path, content)
	case err != nil:
		return 0, err
	}
	if bytes.Equal(old, content) {
		return Unchanged, writeStamp(path, content)
	}
	stamp, _ := os.ReadFile(StampPath(path))
	if string(bytes.TrimSpace(stamp)) == digest(old) {
		return Updated, install(path, content)
	}
	if !force {
		return 0, &EditedError{Path: path, Diff: Diff(string(old), string(content))}
	}
	if err := os.WriteFile(path+".bak", old, 0o600); err != nil {
		return 0, fmt.Errorf("backing up %s: %w", path, err)
	}
	return Overwritten, install(path, content)
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// install writes content atomically (the gateway may read it any time) with
// owner-only permissions: it holds the gateway token.
func install(path string, content []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".openclaw-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return writeStamp(path, content)
}

func writeStamp(path string, content []byte) error {
	return os.WriteFile(StampPath(path), []byte(digest(content)+"\n"), 0o600)
}
