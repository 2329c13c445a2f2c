// Command qubes-claw-standin is a STAND-IN LLM provider for tests, benchmarks
// and `make demo`: it answers OpenAI's, Anthropic's and Ollama's chat APIs
// from recorded fixtures (pkg/llmproxy/standin), so the proxy chain runs
// offline. It is never packaged.
//
// Usage: qubes-claw-standin [--listen 127.0.0.1:PORT]
// It prints "stand-in provider on http://ADDR" once listening and serves
// until SIGINT or SIGTERM.
package main

import (
	"os"

	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/standin"
)

func main() {
	os.Exit(standin.Main(os.Args[1:], os.Stdout, os.Stderr))
}
