package openclaw

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// acceptedKeys are the keys of OpenClaw's strict schema that the research
// (shared/reference/llm-proxy.md §4.2-4.3) verified in both openclaw@2026.2.17
// and @2026.9.6; <id> is the provider id, [] an array element.
var acceptedKeys = map[string]bool{
	"gateway.mode": true, "gateway.port": true, "gateway.bind": true,
	"gateway.auth.mode": true, "gateway.auth.token": true,
	"models.mode":                                                    true,
	"models.providers.<id>.baseUrl":                                  true,
	"models.providers.<id>.api":                                      true,
	"models.providers.<id>.apiKey":                                   true,
	"models.providers.<id>.auth":                                     true,
	"models.providers.<id>.headers":                                  true,
	"models.providers.<id>.authHeader":                               true,
	"models.providers.<id>.models[].id":                              true,
	"models.providers.<id>.models[].name":                            true,
	"models.providers.<id>.models[].reasoning":                       true,
	"models.providers.<id>.models[].input":                           true,
	"models.providers.<id>.models[].contextWindow":                   true,
	"models.providers.<id>.models[].maxTokens":                       true,
	"models.providers.<id>.models[].compat.supportsUsageInStreaming": true,
	"models.providers.<id>.models[].compat.maxTokensField":           true,
	"models.providers.<id>.models[].compat.supportsTools":            true,
	"models.providers.<id>.models[].compat.supportsDeveloperRole":    true,
	"agents.defaults.model.primary":                                  true,
	"agents.defaults.model.fallbacks":                                true,
}

// validAPIs are the provider api values accepted by openclaw@2026.2.17.
var validAPIs = map[string]bool{"openai-completions": true, "openai-responses": true, "anthropic-messages": true,
	"google-generative-ai": true, "github-copilot": true, "bedrock-converse-stream": true, "ollama": true}

func flatten(prefix string, v any, out map[string]any) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, val, out)
		}
	case []any:
		if len(x) > 0 {
			if _, ok := x[0].(map[string]any); ok {
				for _, e := range x {
					flatten(prefix+"[]", e, out)
				}
				return
			}
		}
		out[prefix] = x
	default:
		out[prefix] = x
	}
}

func testOptions() Options {
	return Options{
		ProxyToken: "proxy-client-token-1234",
		Models: []Model{
			{ID: "claude-sonnet-4", Name: "Claude Sonnet 4", ContextWindow: 200000, MaxTokens: 8192, Images: true},
			{ID: "r1", Reasoning: true},
		},
		DefaultModel: "r1",
	}
}

func TestGenerateOnlyAcceptedKeys(t *testing.T) {
	b, err := Generate(testOptions())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	flat := map[string]any{}
	flatten("", doc, flat)
	var keys []string
	for k := range flat {
		norm := strings.Replace(k, "models.providers."+DefaultProviderID+".", "models.providers.<id>.", 1)
		if !acceptedKeys[norm] {
			t.Errorf("key %s is not in OpenClaw's accepted key list", k)
		}
		keys = append(keys, norm)
	}
	sort.Strings(keys)
	want := map[string]any{
		"gateway.mode": "local", "gateway.port": 18789.0, "gateway.bind": "loopback", "gateway.auth.mode": "token",
		"models.mode": "merge", "agents.defaults.model.primary": "qubes/r1",
		"models.providers.qubes.baseUrl": "http://127.0.0.1:32125/v1",
		"models.providers.qubes.apiKey":  "proxy-client-token-1234",
	}
	for k, v := range want {
		if flat[k] != v {
			t.Errorf("%s = %v, want %v", k, flat[k], v)
		}
	}
	if api, _ := flat["models.providers.qubes.api"].(string); !validAPIs[api] {
		t.Errorf("api %q is not a valid OpenClaw api", api)
	}
	if tok, _ := flat["gateway.auth.token"].(string); !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(tok) {
		t.Errorf("gateway token %q is not a generated 32-byte hex token", tok)
	}
	var f file
	_ = json.Unmarshal(b, &f)
	ms := f.Models.Providers["qubes"].Models
	if len(ms) != 2 || strings.Join(ms[0].Input, ",") != "text,image" || ms[1].Name != "r1" || !ms[1].Reasoning ||
		ms[1].ContextWindow == 0 || !ms[0].Compat.SupportsUsageInStreaming {
		t.Errorf("models %+v", ms)
	}
}

func TestGenerateRejects(t *testing.T) {
	o := testOptions()
	o.DefaultModel = "gpt-9"
	if _, err := Generate(o); err == nil {
		t.Error("a default model outside the list must be refused")
	}
	if _, err := Generate(Options{}); err == nil {
		t.Error("no models must be refused")
	}
	a, _ := Generate(Options{Models: []Model{{ID: "m"}}})
	if !strings.Contains(string(a), `"apiKey": "`+PlaceholderKey+`"`) {
		t.Errorf("without a proxy token the placeholder key is used:\n%s", a)
	}
}

func TestWriteKeepsEditedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".openclaw", "openclaw.json")
	first, _ := Generate(testOptions())
	if out, err := Write(path, first, false); err != nil || out != Created {
		t.Fatalf("first write: %v, %v", out, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v: the file holds the gateway token", st.Mode().Perm())
	}
	if out, err := Write(path, first, false); err != nil || out != Unchanged {
		t.Errorf("same content: %v, %v", out, err)
	}
	o := testOptions()
	o.GatewayToken = GatewayToken(first)
	o.DefaultModel = "claude-sonnet-4"
	second, _ := Generate(o)
	if out, err := Write(path, second, false); err != nil || out != Updated {
		t.Fatalf("our own unedited file must be updated: %v, %v", out, err)
	}
	if GatewayToken(second) != GatewayToken(first) {
		t.Error("the gateway token must survive regeneration")
	}

	edited := strings.Replace(string(second), `"port": 18789`, `"port": 18800`, 1)
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Write(path, first, false)
	var ee *EditedError
	if !errors.As(err, &ee) || !errors.Is(err, ErrEdited) {
		t.Fatalf("edited file: err = %v", err)
	}
	if !strings.Contains(ee.Diff, `- `) || !strings.Contains(ee.Diff, `"port": 18800`) || !strings.Contains(ee.Diff, `+ `) {
		t.Errorf("diff does not show the change:\n%s", ee.Diff)
	}
	if got, _ := os.ReadFile(path); string(got) != edited {
		t.Error("an edited file must be left untouched without force")
	}
	if out, err := Write(path, first, true); err != nil || out != Overwritten {
		t.Fatalf("force: %v, %v", out, err)
	}
	if bak, _ := os.ReadFile(path + ".bak"); string(bak) != edited {
		t.Error("force must keep the edited file as .bak")
	}
	if got, _ := os.ReadFile(path); string(got) != string(first) {
		t.Error("force must write the new content")
	}
}

func TestForeignFileIsEdited(t *testing.T) {
	path := filepath.Join(t.TempDir(), "openclaw.json")
	// A file qubes-claw never wrote (no stamp), e.g. from OpenClaw's wizard.
	_ = os.WriteFile(path, []byte("{ // json5\n  gateway: {mode: 'local'},\n}\n"), 0o600)
	b, _ := Generate(testOptions())
	if _, err := Write(path, b, false); !errors.Is(err, ErrEdited) {
		t.Errorf("err = %v, want ErrEdited", err)
	}
	if GatewayToken([]byte("{ // json5\n}")) != "" {
		t.Error("a JSON5 file yields no token")
	}
}

func TestDiff(t *testing.T) {
	a := "1\n2\n3\n4\n5\n6\n7\n"
	b := "1\n2\n3\nfour\n5\n6\n7\n"
	want := "  ...\n  3\n- 4\n+ four\n  5\n  ...\n"
	if got := Diff(a, b); got != want {
		t.Errorf("Diff =\n%s\nwant\n%s", got, want)
	}
}
