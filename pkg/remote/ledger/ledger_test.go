package ledger

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
)

func TestReplayAndInterrupted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "ledger")
	l, err := Open(path, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	if err := l.Begin("work", "a", now); err != nil {
		t.Fatal(err)
	}
	if err := l.Begin("work", "a", now); !errors.Is(err, ErrSeen) {
		t.Errorf("second Begin = %v, want ErrSeen", err)
	}
	if err := l.Begin("other", "a", now); err != nil {
		t.Errorf("same id from another VM: %v", err)
	}
	if l.Lookup("work", "a") != Running {
		t.Error("want Running")
	}
	if err := l.Begin("work", "b", now); err != nil {
		t.Fatal(err)
	}
	if err := l.Finish("work", "b"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	// Simulate a crash: no Close, reopen from the file.
	l2, err := Open(path, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		vm, id string
		want   State
	}{{"work", "a", Interrupted}, {"other", "a", Interrupted}, {"work", "b", Done}, {"work", "c", Unknown}} {
		if got := l2.Lookup(tt.vm, proto.ID(tt.id)); got != tt.want {
			t.Errorf("%s/%s: %v, want %v", tt.vm, tt.id, got, tt.want)
		}
	}
	if err := l2.Begin("work", "b", now); !errors.Is(err, ErrSeen) {
		t.Errorf("replay after restart = %v", err)
	}
	if err := l2.Begin("work", "a", now); !errors.Is(err, ErrSeen) {
		t.Errorf("interrupted id run again: %v", err)
	}
	// A second restart still knows the interrupted one.
	l2.Close()
	l3, err := Open(path, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if l3.Lookup("work", "a") != Interrupted || l3.Lookup("work", "b") != Done {
		t.Error("states lost across compaction")
	}
}

func TestExpiry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger")
	l, err := Open(path, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	l.now = func() time.Time { return old }
	l.Begin("work", "old", old.Unix())
	l.Finish("work", "old")
	l.now = time.Now
	l.Begin("work", "new", time.Now().Unix())
	l.Close()
	l2, err := Open(path, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if l2.Lookup("work", "old") != Unknown || l2.Lookup("work", "new") != Interrupted {
		t.Error("expired record kept or live record dropped")
	}
}

func TestTornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger")
	exp := time.Now().Add(time.Hour).Unix()
	content := "B work a " + strconv.FormatInt(exp, 10) + "\nD work a " + strconv.FormatInt(exp, 10) + "\nB work b 12"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if l.Lookup("work", "a") != Done || l.Lookup("work", "b") != Unknown {
		t.Error("torn line handling")
	}
	os.WriteFile(path, []byte("B work ../x 1\n"), 0o600)
	if _, err := Open(path, time.Minute); err == nil {
		t.Error("corrupt record accepted")
	}
}
