package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

func TestRecord(t *testing.T) {
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	l.SetFormatter(&logrus.JSONFormatter{})
	a := New(logrus.NewEntry(l))
	body := []byte("echo hi\n" + strings.Repeat("x", 500))
	a.Record(Exec, "work", "id-1", "command started", Command(body))
	a.Record(AuthFail, "work", "id-2", "authentication failed", nil)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", buf.String())
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil {
		t.Fatal(err)
	}
	if ev["audit"] != "EXEC" || ev["vm"] != "work" || ev["id"] != "id-1" || ev["level"] != "info" || ev["size"] != float64(len(body)) {
		t.Errorf("event %v", ev)
	}
	if cmd := ev["cmd"].(string); !strings.HasPrefix(cmd, `"echo hi\n`) || len(cmd) > PreviewLen+20 {
		t.Errorf("preview %q", cmd)
	}
	json.Unmarshal([]byte(lines[1]), &ev)
	if ev["audit"] != "AUTH-FAIL" || ev["level"] != "warning" {
		t.Errorf("event %v", ev)
	}
}
