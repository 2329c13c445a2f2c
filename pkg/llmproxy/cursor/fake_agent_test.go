package cursor

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestMain doubles as a fake cursor-agent: the provider runs this test
// binary as the agent (cursor.agent_path), and the --model argument picks
// the scenario it plays. Everything it receives is recorded in the
// workspace for the tests to inspect.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "--print":
			os.Exit(fakeAgent(os.Args[1:]))
		case "status":
			fmt.Println("Logged in as test@example.org")
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

func emit(v any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func assistant(text string, extra map[string]any) map[string]any {
	ev := map[string]any{"type": "assistant", "session_id": "s1",
		"message": map[string]any{"role": "assistant", "content": []any{map[string]any{"type": "text", "text": text}}}}
	for k, v := range extra {
		ev[k] = v
	}
	return ev
}

func result(text string, isError bool) map[string]any {
	sub := "success"
	if isError {
		sub = "error"
	}
	return map[string]any{"type": "result", "subtype": sub, "is_error": isError, "result": text, "duration_ms": 10,
		"duration_api_ms": 8, "session_id": "s1", "request_id": "r1",
		"usage": map[string]any{"inputTokens": 100, "outputTokens": 5, "cacheReadTokens": 50}}
}

func fakeAgent(args []string) int {
	var ws, model string
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--workspace":
			ws = args[i+1]
		case "--model":
			model = args[i+1]
		}
	}
	// Signal handling is set up before the pid file tells the test the
	// agent is running, so a SIGTERM sent right away is seen.
	sig := make(chan os.Signal, 1)
	switch model {
	case "hang", "linger":
		signal.Notify(sig, syscall.SIGTERM)
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
	}
	prompt, _ := io.ReadAll(os.Stdin)
	_ = os.WriteFile(filepath.Join(ws, "prompt"), prompt, 0o600)
	_ = os.WriteFile(filepath.Join(ws, "argv"), []byte(strings.Join(args, "\n")), 0o600)
	_ = os.WriteFile(filepath.Join(ws, "env-key"), []byte(os.Getenv("CURSOR_API_KEY")), 0o600)
	_ = os.WriteFile(filepath.Join(ws, "pid"), []byte(fmt.Sprint(os.Getpid())), 0o600)
	ts := func(n int) map[string]any { return map[string]any{"timestamp_ms": 1767225600000 + n} }

	emit(map[string]any{"type": "system", "subtype": "init", "session_id": "s1", "model": "Auto", "cwd": ws,
		"apiKeySource": "login", "permissionMode": "default"})
	emit(map[string]any{"type": "user", "session_id": "s1",
		"message": map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": string(prompt)}}}})
	switch model {
	case "partial":
		emit(map[string]any{"type": "thinking", "subtype": "delta", "text": "Let me ", "timestamp_ms": 1})
		emit(map[string]any{"type": "thinking", "subtype": "delta", "text": "think.", "timestamp_ms": 2})
		emit(map[string]any{"type": "thinking", "subtype": "completed", "timestamp_ms": 3})
		emit(assistant("Hel", ts(4)))
		emit(assistant("lo", ts(5)))
		emit(assistant("Hello", map[string]any{"model_call_id": "mc1", "timestamp_ms": 6}))
		call := map[string]any{"readToolCall": map[string]any{"args": map[string]any{"path": "a.txt"}}}
		emit(map[string]any{"type": "tool_call", "subtype": "started", "call_id": "c1\nx", "tool_call": call, "model_call_id": "mc1"})
		emit(map[string]any{"type": "tool_call", "subtype": "completed", "call_id": "c1\nx", "tool_call": call, "model_call_id": "mc1"})
		emit(assistant(" world", ts(7)))
		fmt.Println("warning: not an event")
		emit(assistant("Hello world", nil))
		emit(result("Hello world", false))
	case "consolidated":
		emit(assistant("Full answer", nil))
		emit(result("Full answer", false))
	case "result_only":
		emit(result("Only result", false))
	case "tail":
		emit(assistant("Hello", ts(1)))
		emit(result("Hello world", false))
	case "auth":
		fmt.Fprintln(os.Stderr, "\x1b[31mError: Authentication required. Please run 'cursor-agent login' first.\x1b[0m")
		return 1
	case "quota":
		fmt.Fprintln(os.Stderr, "You've hit your usage limit for this billing period.")
		return 1
	case "badmodel":
		fmt.Fprintln(os.Stderr, "Cannot use this model: badmodel. Available models: auto, sonnet-4.5")
		return 1
	case "author":
		// "author" must not read as an auth failure
		fmt.Fprintln(os.Stderr, "internal error while formatting the author field")
		return 1
	case "result_error":
		emit(result("The agent crashed", true))
		return 1
	case "midway":
		emit(assistant("partial", ts(1)))
		fmt.Fprintln(os.Stderr, "TypeError: fetch failed")
		return 1
	case "hang", "linger":
		if model == "linger" {
			emit(result("done", false))
		} else {
			emit(assistant("x", ts(1)))
		}
		<-sig
		_ = os.WriteFile(filepath.Join(ws, "signal"), []byte("SIGTERM"), 0o600)
		return 143
	case "stubborn":
		emit(assistant("x", ts(1)))
		select {}
	}
	return 0
}
