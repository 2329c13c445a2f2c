package webadmin

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/qubes-claw/qubes-claw/pkg/logging"
	"github.com/qubes-claw/qubes-claw/pkg/remote/audit"
	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
)

// daemonLines writes a command's life through qvm-remote's own audit
// package with the formatter the daemon uses for format (plain is what it
// writes under systemd and into its log file).
func daemonLines(t *testing.T, format string) []string {
	t.Helper()
	var buf bytes.Buffer
	l, err := logging.New(logging.Config{Level: "info", Format: format}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	a := audit.New(l.WithField("program", "qvm-remote-dom0"))
	body := []byte("echo \"hi\"\nrm -rf / # a newline must not forge a line")
	a.Record(audit.Channel, "work", "", "channel open", nil)
	a.Record(audit.AuthOK, "work", proto.ID("id1"), "token verified", logrus.Fields{"key_fingerprint": "SHA256:00112233"})
	a.Record(audit.Exec, "work", proto.ID("id1"), "command started", audit.Command(body))
	a.Record(audit.DoneFail, "work", proto.ID("id1"), "command failed", logrus.Fields{"exit": 3, "duration_ms": 1250})
	a.Record(audit.AuthFail, "evil", proto.ID("id2"), "auth", logrus.Fields{"detail": "token does not match"})
	l.WithField("program", "qvm-remote-dom0").Info("not an audit line")
	return strings.Split(strings.TrimSpace(buf.String()), "\n")
}

func TestParseDaemonLines(t *testing.T) {
	for _, format := range []string{"plain", "text", "json"} {
		t.Run(format, func(t *testing.T) {
			lines := daemonLines(t, format)
			if len(lines) != 6 {
				t.Fatalf("%d lines: %q", len(lines), lines)
			}
			now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
			var evs []Event
			for _, l := range lines {
				if e, ok := ParseLine(l, now); ok {
					evs = append(evs, e)
				}
			}
			if len(evs) != 5 {
				t.Fatalf("%d events from %q", len(evs), lines)
			}
			cats := []string{"CHANNEL", "AUTH-OK", "EXEC", "DONE-FAIL", "AUTH-FAIL"}
			for i, e := range evs {
				if e.Category != cats[i] {
					t.Errorf("event %d: category %q, want %s", i, e.Category, cats[i])
				}
			}
			ex := evs[2]
			if ex.VM != "work" || ex.ID != "id1" || ex.Msg != "command started" {
				t.Errorf("EXEC: %+v", ex)
			}
			if want := "echo \"hi\"\nrm -rf / # a newline must not forge a line"; ex.Cmd() != want {
				t.Errorf("cmd %q, want %q", ex.Cmd(), want)
			}
			if evs[1].Detail != "key_fingerprint=SHA256:00112233" {
				t.Errorf("AUTH-OK detail %q", evs[1].Detail)
			}
			if format == "plain" && !ex.Time.Equal(now) {
				t.Errorf("a line without a timestamp gets the arrival time, got %v", ex.Time)
			}
			if format != "plain" && ex.Time.Equal(now) {
				t.Errorf("the line's own timestamp was ignored")
			}

			f := NewFeed(10)
			for _, e := range evs {
				f.Add(e)
			}
			h := f.History()
			if len(h) != 1 || h[0].Status != "failed" || h[0].Exit == nil || *h[0].Exit != 3 || h[0].Duration != 1250*time.Millisecond {
				t.Errorf("history %+v", h)
			}
			if q := f.Health(); q.Running != 0 || q.Refused != 1 || !strings.Contains(q.LastRefusal, "AUTH-FAIL evil") {
				t.Errorf("health %+v", q)
			}
		})
	}
}

func TestFeedBounds(t *testing.T) {
	f := NewFeed(3)
	for i := 0; i < 5; i++ {
		id := fmt.Sprint(i)
		f.Add(Event{Category: "EXEC", VM: "v", ID: id, fields: map[string]string{"cmd": `"c` + id + `"`}})
	}
	evs, last := f.Since(0)
	if len(evs) != 3 || evs[0].Seq != 3 || last != 5 {
		t.Fatalf("kept %d events from seq %d, last %d", len(evs), evs[0].Seq, last)
	}
	h := f.History()
	if len(h) != 3 || h[0].Cmd != "c4" || h[2].Cmd != "c2" {
		t.Fatalf("history %+v", h)
	}
	if q := f.Health(); q.Running != 3 {
		t.Errorf("running %d", q.Running)
	}
	// A result for a command that fell out of the history changes nothing.
	f.Add(Event{Category: "DONE", VM: "v", ID: "0", fields: map[string]string{"exit": "0"}})
	if q := f.Health(); q.Running != 3 {
		t.Errorf("running %d", q.Running)
	}
}

// TestFollowFile: the backlog, an appended line, a partial line completed
// later, and a rotated file.
func TestFollowFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "audit.log")
	write := func(flag int, s string) {
		f, err := os.OpenFile(p, flag|os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	write(os.O_TRUNC, "level=info msg=old audit=EXEC vm=a id=1 cmd=\"\\\"x\\\"\"\nnoise\n")
	feed := NewFeed(100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { FollowFile(ctx, p, 1<<20, feed, logging.Discard()); close(done) }()
	defer func() { cancel(); <-done }()

	waitEvents := func(n int) []Event {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if evs, _ := feed.Since(0); len(evs) >= n {
				return evs
			}
			time.Sleep(20 * time.Millisecond)
		}
		evs, _ := feed.Since(0)
		t.Fatalf("%d events, want %d: %+v", len(evs), n, evs)
		return nil
	}
	waitEvents(1)
	write(os.O_APPEND, "level=info msg=done audit=DONE vm=a id=1 ")
	time.Sleep(3 * pollInterval) // a partial line must wait for its end
	if evs, _ := feed.Since(0); len(evs) != 1 {
		t.Fatalf("a partial line was parsed: %+v", evs)
	}
	write(os.O_APPEND, "exit=0 duration_ms=5\n")
	evs := waitEvents(2)
	if evs[1].Category != "DONE" || evs[1].Detail != "duration_ms=5 exit=0" {
		t.Errorf("appended: %+v", evs[1])
	}
	// Rotation: a new file under the same name is read from its start.
	os.Rename(p, p+".1")
	write(os.O_TRUNC, "level=warning msg=auth audit=AUTH-FAIL vm=b\n")
	evs = waitEvents(3)
	if evs[2].Category != "AUTH-FAIL" || evs[2].VM != "b" {
		t.Errorf("after rotation: %+v", evs[2])
	}
}

// TestFollowJournal runs a stand-in journalctl that checks the arguments
// the real one needs (follow, unit, cat output) and prints a backlog line,
// then a new line a moment later.
func TestFollowJournal(t *testing.T) {
	dir := t.TempDir()
	jc := filepath.Join(dir, "journalctl")
	script := `#!/bin/sh
case " $* " in *" --follow "*) ;; *) echo "no --follow: $*" >&2; exit 2;; esac
case " $* " in *" --unit=qvm-remote-dom0.service "*) ;; *) echo "wrong unit: $*" >&2; exit 2;; esac
case " $* " in *" --output=cat "*) ;; *) echo "wrong output: $*" >&2; exit 2;; esac
echo 'level=info msg="channel open" audit=CHANNEL vm=work'
echo 'level=info msg=unrelated'
sleep 0.3
echo 'level=warning msg=auth audit=AUTH-FAIL vm=evil id=x1'
exec sleep 30
`
	if err := os.WriteFile(jc, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	feed := NewFeed(10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { FollowJournal(ctx, jc, "qvm-remote-dom0.service", 50, feed, logging.Discard()); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	var evs []Event
	for time.Now().Before(deadline) {
		if evs, _ = feed.Since(0); len(evs) >= 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done // the journalctl child dies with ctx
	if len(evs) != 2 || evs[0].Category != "CHANNEL" || evs[1].Category != "AUTH-FAIL" || evs[1].ID != "x1" {
		t.Fatalf("events %+v", evs)
	}
}
