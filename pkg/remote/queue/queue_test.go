package queue

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
)

func TestSubmitClaimFinish(t *testing.T) {
	d := Dir(filepath.Join(t.TempDir(), ".qvm-remote"))
	tok := proto.Token{Time: 1, Timeout: 2}
	if err := d.Submit("c1", []byte("hostname\n"), tok); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{d.Pending(), d.Tmp(), d.Results(), d.History()} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v", p, fi, err)
		}
	}
	if tmp, _ := os.ReadDir(d.Tmp()); len(tmp) != 0 {
		t.Errorf("temp files left: %v", tmp)
	}
	ids, bad, err := d.PendingIDs()
	if err != nil || len(ids) != 1 || ids[0] != "c1" || len(bad) != 0 {
		t.Fatalf("pending %v %v %v", ids, bad, err)
	}
	e, err := d.Claim("c1")
	if err != nil || string(e.Body) != "hostname\n" || e.Token != tok || e.TokenErr != nil {
		t.Fatalf("claim %+v %v", e, err)
	}
	if _, err := d.Claim("c1"); !os.IsNotExist(err) {
		t.Errorf("second claim: %v", err)
	}
	if d.Withdraw("c1") {
		t.Error("withdraw of a claimed entry succeeded")
	}
	if err := d.Finish("c1", 3, Meta{Status: "refused", Reason: "a\nb", DurationMS: 5}); err != nil {
		t.Fatal(err)
	}
	if code, ok := d.ReadExit("c1"); !ok || code != 3 {
		t.Errorf("exit %d %v", code, ok)
	}
	if m := d.ReadMeta("c1"); m.Status != "refused" || m.Reason != "a b" || m.DurationMS != 5 {
		t.Errorf("meta %+v", m)
	}
	if run, _ := d.RunningIDs(); len(run) != 0 {
		t.Errorf("running not cleared: %v", run)
	}
	if err := d.Archive("c1", []byte("hostname\n"), time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(d.History(), "2026-01-02", "c1", "exit")); err != nil || string(b) != "3\n" {
		t.Errorf("archive: %q %v", b, err)
	}
}

func TestClaimWithoutToken(t *testing.T) {
	d := Dir(t.TempDir())
	d.Init()
	os.WriteFile(filepath.Join(d.Pending(), "c2"), []byte("x"), 0o600)
	e, err := d.Claim("c2")
	if err != nil || e.TokenErr == nil {
		t.Errorf("claim without token: %+v %v", e, err)
	}
}

func TestRejectNameSafe(t *testing.T) {
	d := Dir(t.TempDir())
	d.Init()
	d.RejectName("bad.id", "rejected: malformed command id")
	if b, err := os.ReadFile(filepath.Join(d.Results(), "bad.id.exit")); err != nil || string(b) != "255\n" {
		t.Errorf("rejection of bad.id: %q %v", b, err)
	}
	d.RejectName(".hidden", "x")
	if _, err := os.Stat(filepath.Join(d.Results(), ".hidden.exit")); err == nil {
		t.Error("dot name answered")
	}
}
