package cursor

import (
	"fmt"
	"strings"

	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/chat"
)

// Prompt renders a conversation as the single text prompt cursor-agent
// takes. Every request is a fresh agent session, so the whole history is
// sent. Roles are marked so the model can tell instructions, turns and tool
// output apart; images cannot be passed and are marked as omitted.
func Prompt(msgs []chat.Message) string {
	var b strings.Builder
	for i, m := range msgs {
		if i > 0 {
			b.WriteString("\n\n")
		}
		switch m.Role {
		case "tool":
			fmt.Fprintf(&b, "[tool result %s]\n", m.ToolCallID)
		default:
			fmt.Fprintf(&b, "[%s]\n", m.Role)
		}
		b.WriteString(text(m.Content))
		for _, tc := range m.ToolCalls {
			fmt.Fprintf(&b, "\n[tool call %s %s] %s", tc.ID, tc.Function.Name, tc.Function.Arguments)
		}
	}
	return b.String()
}

func text(c chat.Content) string {
	if c.Parts == nil {
		return c.Text
	}
	var parts []string
	for _, p := range c.Parts {
		switch p.Type {
		case "text":
			parts = append(parts, p.Text)
		default:
			parts = append(parts, "[image omitted]")
		}
	}
	return strings.Join(parts, "\n")
}
