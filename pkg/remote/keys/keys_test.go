package keys

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := strings.Repeat("0a", 32)
	if k, err := Parse(" " + good + "\n"); err != nil || k.Hex() != good {
		t.Errorf("Parse(good) = %v, %v", k.Hex(), err)
	}
	for _, bad := range []string{"", good[:62], good + "00", strings.Repeat("zz", 32), "0x" + good[2:]} {
		if _, err := Parse(bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("Parse(%q) = %v", bad, err)
		}
	}
}

func TestFingerprintHidesKey(t *testing.T) {
	k := Generate()
	fp := k.Fingerprint()
	if !strings.HasPrefix(fp, "SHA256:") || len(fp) != 7+16 {
		t.Errorf("fingerprint %q", fp)
	}
	if strings.Contains(k.Hex(), fp[7:]) || k.String() != fp {
		t.Error("fingerprint reveals the key, or String is not the fingerprint")
	}
	if Generate().Fingerprint() == fp {
		t.Error("two keys, one fingerprint")
	}
}

func TestStore(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "remote.d")}
	if _, err := s.Get("work"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Get before authorize = %v", err)
	}
	k := Generate()
	if err := s.Authorize("work", k); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(s.Dir, "work.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	if got, err := s.Get("work"); err != nil || got != k {
		t.Fatalf("Get = %v, %v", got, err)
	}
	k2 := Generate()
	if err := s.Authorize("work", k2); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get("work"); got != k2 {
		t.Error("re-authorize did not replace the key")
	}
	if err := s.Authorize("../etc", k); err == nil {
		t.Error("path in VM name accepted")
	}
	if err := s.Authorize("other", k); err != nil {
		t.Fatal(err)
	}
	list, err := s.List()
	if err != nil || len(list) != 2 || list[0].VM != "other" || list[1].Fingerprint != k2.Fingerprint() {
		t.Errorf("List = %+v, %v", list, err)
	}
	if err := s.Revoke("work"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("work"); !errors.Is(err, ErrNoKey) {
		t.Errorf("Get after revoke = %v", err)
	}
	if err := s.Revoke("work"); !errors.Is(err, ErrNoKey) {
		t.Errorf("second revoke = %v", err)
	}
}

func TestGetRefusesReadableKey(t *testing.T) {
	s := Store{Dir: t.TempDir()}
	// A 1.x key file as qvm-remote-dom0 1.x wrote it, but world-readable.
	p := filepath.Join(s.Dir, "work.key")
	if err := os.WriteFile(p, []byte(strings.Repeat("ab", 32)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("work"); err == nil {
		t.Error("a world-readable key must be refused")
	}
	os.Chmod(p, 0o600)
	if _, err := s.Get("work"); err != nil {
		t.Errorf("1.x key file without newline: %v", err)
	}
}

func TestReadLegacyConf(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		want          []string
		wantErr       bool
	}{
		{"1.x sample", "# comment\n#QVM_REMOTE_VMS=\nQVM_REMOTE_VMS=\"work dev\"\nQVM_REMOTE_VM_USER=user\n", []string{"work", "dev"}, false},
		{"legacy names", "QUBES_REMOTE_VM=old\nexport QUBES_REMOTE_VMS='a,b'\n", []string{"old", "a", "b"}, false},
		{"duplicates", "QVM_REMOTE_VMS=a\nQUBES_REMOTE_VMS=a\n", []string{"a"}, false},
		{"bad name", "QVM_REMOTE_VMS=\"ok $(rm -rf /)\"\n", nil, true},
		{"garbage", "hello\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name)
			os.WriteFile(p, []byte(tt.content), 0o644)
			got, err := ReadLegacyConf(p)
			if (err != nil) != tt.wantErr || strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %v, %v; want %v (err %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if got, err := ReadLegacyConf(filepath.Join(dir, "missing")); err != nil || got != nil {
		t.Errorf("missing file: %v, %v", got, err)
	}
}
