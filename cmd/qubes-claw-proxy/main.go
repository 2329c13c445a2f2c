// Command qubes-claw-proxy is the agent VM's OpenAI-compatible endpoint on
// 127.0.0.1:32125: OpenClaw talks only to it, and it forwards each chat
// completion to the provider chosen in its config file (OpenAI, Anthropic,
// Ollama or the Cursor agent CLI), holding the real API keys itself.
package main

import (
	"os"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
)

func main() {
	os.Exit(cli.Run(newRootCmd(), os.Args[1:], cli.OSStdio()))
}
