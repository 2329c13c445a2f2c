package sim

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestAdminCreateMachine(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	m, err := CreateMachine(dir, Info{Isolation: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateMachine(dir, Info{}); err == nil {
		t.Error("second CreateMachine on the same directory succeeded")
	}
	m2, err := Open(dir)
	if err != nil || !m2.Info.Isolation || m2.Info.ID == "" || m2.Info.Version != 1 {
		t.Fatalf("Open: %+v, %v", m2, err)
	}
	st, err := m.Load()
	if err != nil {
		t.Fatal(err)
	}
	d := st.Domain(Dom0)
	if len(st.Domains) != 1 || d == nil || d.Class != AdminVM || d.QID != 0 || d.Power != Running || d.Props["label"] != "black" {
		t.Fatalf("state = %+v", st)
	}
	// §1.1, §6: policy dirs 0775, /var/log/qubes and /run/qubes 2770.
	for p, want := range map[string]os.FileMode{
		"/etc/qubes/policy.d":         0o775 | os.ModeDir,
		"/etc/qubes/policy.d/include": 0o775 | os.ModeDir,
		"/var/log/qubes":              0o770 | os.ModeDir | os.ModeSetgid,
		"/run/qubes":                  0o770 | os.ModeDir | os.ModeSetgid,
		"/tmp":                        0o777 | os.ModeDir | os.ModeSticky,
		"/home/user":                  0o700 | os.ModeDir,
		"/etc/qubes-rpc":              0o755 | os.ModeDir,
		"/usr/lib/systemd/system":     0o755 | os.ModeDir,
		"/etc/systemd/system":         0o755 | os.ModeDir,
		"/usr/bin":                    0o755 | os.ModeDir,
		"/var/lib/qubes":              0o755 | os.ModeDir,
	} {
		fi, err := os.Stat(m.Path(Dom0, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if fi.Mode() != want {
			t.Errorf("%s mode %v, want %v", p, fi.Mode(), want)
		}
	}
	if !exists(m, Dom0, "/usr/lib/systemd/system/qubes-vm@.service") {
		t.Error("qubes-vm@.service missing in dom0")
	}
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// §2.4: an AppVM keeps /home, /rw and /usr/local across restarts and loses
// everything else (/etc, /var with linger); a StandaloneVM keeps everything;
// /run is empty after every start.
func TestAdminDomainFSVolatileReset(t *testing.T) {
	m := newAdminMachine(t)

	// An AppVM starts with the template's /home and /usr/local content.
	if !exists(m, "work", "/home/user/.bashrc") || !exists(m, "work", "/usr/local/share/from-template") {
		t.Error("AppVM /home or /usr/local not initialised from the template")
	}
	if !exists(m, "work", "/etc/os-release") || !exists(m, "work", "/rw/config") {
		t.Error("AppVM lacks the template's /etc or its /rw/config")
	}

	changes := map[string]bool{ // path → survives a restart of an AppVM
		"/etc/qubes-rpc/claw.Local":                        false,
		"/etc/systemd/system/claw.service":                 false,
		"/var/lib/systemd/linger/user":                     false,
		"/usr/bin/claw":                                    false,
		"/run/qubes-service/claw-gateway":                  false,
		"/home/user/.config/systemd/user/claw.service":     true,
		"/usr/local/etc/qubes-rpc/claw.Local":              true,
		"/rw/config/rc.local":                              true,
		"/rw/bind-dirs/var/lib/claw/state":                 true,
		"/home/user/.local/share/claw/big.bin":             true,
		"/usr/local/etc/qubes/rpc-config/qubes.ConnectTCP": true,
	}
	for _, vm := range []string{"work", "vault"} {
		for p := range changes {
			writeFile(t, m, vm, p, []byte("changed in "+vm+"\n"))
		}
	}
	// A changed template file reaches the AppVM at its next start.
	writeFile(t, m, "fedora-41", "/etc/os-release", []byte("NAME=Fedora 41 updated\n"))

	st, err := m.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, vm := range []string{"work", "vault"} {
		if err := m.ResetVolatile(st, st.Domain(vm)); err != nil {
			t.Fatalf("ResetVolatile(%s): %v", vm, err)
		}
	}
	for p, persists := range changes {
		if got := exists(m, "work", p); got != persists {
			t.Errorf("AppVM %s after restart: exists=%v, want %v", p, got, persists)
		}
		// StandaloneVM: everything but /run persists.
		want := p[:5] != "/run/"
		if got := exists(m, "vault", p); got != want {
			t.Errorf("StandaloneVM %s after restart: exists=%v, want %v", p, got, want)
		}
	}
	for _, vm := range []string{"work", "vault"} {
		entries, err := os.ReadDir(m.Path(vm, "/run"))
		if err != nil || len(entries) != 0 {
			t.Errorf("%s /run after restart: %v, %v", vm, entries, err)
		}
	}
	if b, _ := os.ReadFile(m.Path("work", "/etc/os-release")); string(b) != "NAME=Fedora 41 updated\n" {
		t.Errorf("AppVM /etc/os-release = %q, want the template's current one", b)
	}
	if b, _ := os.ReadFile(m.Path("vault", "/etc/os-release")); string(b) != "NAME=Fedora\n" {
		t.Errorf("StandaloneVM /etc/os-release = %q, want its own clone", b)
	}
	// The linger directory itself comes back (from the template), empty.
	if !exists(m, "work", "/var/lib/systemd/linger") {
		t.Error("/var/lib/systemd/linger missing after restart")
	}

	// Copy cost: large template files share data, small ones are copies,
	// so editing a small file in the AppVM never touches the template.
	big, tbig := m.Path("work", "/usr/bin/big-binary"), m.Path("fedora-41", "/usr/bin/big-binary")
	bb, _ := os.ReadFile(big)
	if !bytes.Equal(bb, bytes.Repeat([]byte{0x7f}, 2*largeFile)) {
		t.Error("large file content differs from the template's")
	}
	small, tsmall := m.Path("work", "/etc/os-release"), m.Path("fedora-41", "/etc/os-release")
	if inode(t, small) == inode(t, tsmall) {
		t.Error("small file shares the template's inode")
	}
	if err := os.WriteFile(small, []byte("edited in AppVM\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(tsmall); string(b) != "NAME=Fedora 41 updated\n" {
		t.Errorf("editing the AppVM's copy changed the template: %q", b)
	}
	_ = tbig
}

func TestAdminDomainFSDispVM(t *testing.T) {
	m := newAdminMachine(t)
	mustRun(t, m, "qvm-prefs", "work", "template_for_dispvms", "True")
	writeFile(t, m, "work", "/home/user/dvm-profile", []byte("x\n"))
	mustRun(t, m, "qvm-create", "--disp", "-t", "work", "disp7")
	writeFile(t, m, "disp7", "/home/user/scratch", []byte("x\n"))
	writeFile(t, m, "disp7", "/usr/local/bin/tool", []byte("x\n"))
	st, err := m.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ResetVolatile(st, st.Domain("disp7")); err != nil {
		t.Fatal(err)
	}
	// A disposable loses everything, private parts included: they come back
	// from its disposable template, the root from that template's template.
	if exists(m, "disp7", "/home/user/scratch") || exists(m, "disp7", "/usr/local/bin/tool") {
		t.Error("DispVM kept its own changes across a restart")
	}
	if !exists(m, "disp7", "/home/user/dvm-profile") || !exists(m, "disp7", "/etc/os-release") {
		t.Error("DispVM not rebuilt from its templates")
	}
}

func TestAdminDomainFSRemove(t *testing.T) {
	m := newAdminMachine(t)
	if err := m.RemoveDomainFS("work"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.DomainDir("work")); !os.IsNotExist(err) {
		t.Errorf("work's directory remains: %v", err)
	}
	for _, bad := range []string{"", Dom0, "..", "a/b"} {
		if err := m.RemoveDomainFS(bad); err == nil {
			t.Errorf("RemoveDomainFS(%q) succeeded", bad)
		}
	}
}
