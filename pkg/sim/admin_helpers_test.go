package sim

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The -update flag rewrites testdata/admin/*.golden (go test ./pkg/sim
// -update). It is defined only if no other test file of the package did.
var _ = func() bool {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "update golden files")
	}
	return true
}()

func updatingGolden() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// result is what a simulated tool printed and returned.
type result struct {
	out, err string
	code     int
}

// runTool runs an admin tool in-process with temp files as its streams, as
// the argv[0] dispatcher would.
func runAdmin(t *testing.T, m *Machine, stdin string, name string, args ...string) result {
	t.Helper()
	tl, ok := adminTools[name]
	if !ok {
		t.Fatalf("no admin tool %q", name)
	}
	dir := t.TempDir()
	open := func(n, content string) *os.File {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	in, out, errf := open("in", stdin), open("out", ""), open("err", "")
	c := &Call{Ctx: context.Background(), Name: name, Args: args,
		Stdio: Stdio{In: in, Out: out, Err: errf}, Machine: m, Domain: Dom0}
	code := tl(c)
	read := func(f *os.File) string {
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return result{out: read(out), err: read(errf), code: code}
}

// mustRun runs a tool and fails the test unless it exits 0.
func mustRun(t *testing.T, m *Machine, name string, args ...string) string {
	t.Helper()
	r := runAdmin(t, m, "", name, args...)
	if r.code != 0 {
		t.Fatalf("%s %s: exit %d, stderr %q", name, strings.Join(args, " "), r.code, r.err)
	}
	return r.out
}

// writeFile creates a file inside domain dom.
func writeFile(t *testing.T, m *Machine, dom, p string, data []byte) {
	t.Helper()
	hp := m.Path(dom, p)
	if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hp, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func exists(m *Machine, dom, p string) bool {
	_, err := os.Lstat(m.Path(dom, p))
	return err == nil
}

// newAdminMachine builds the fixture most tests use:
//
//	fedora-41  TemplateVM (default_template), with files in /etc, /usr, /home
//	sys-net    AppVM providing network (default_netvm)
//	work       AppVM
//	vault      StandaloneVM cloned from fedora-41
func newAdminMachine(t *testing.T) *Machine {
	t.Helper()
	m, err := CreateMachine(filepath.Join(t.TempDir(), "machine"), Info{})
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, m, "qvm-create", "-C", "TemplateVM", "-l", "black", "fedora-41")
	writeFile(t, m, "fedora-41", "/etc/os-release", []byte("NAME=Fedora\n"))
	writeFile(t, m, "fedora-41", "/etc/qubes-rpc/qubes.ConnectTCP", []byte("#!/bin/sh\n"))
	writeFile(t, m, "fedora-41", "/usr/bin/big-binary", bytes.Repeat([]byte{0x7f}, 2*largeFile))
	writeFile(t, m, "fedora-41", "/home/user/.bashrc", []byte("# template bashrc\n"))
	writeFile(t, m, "fedora-41", "/usr/local/share/from-template", []byte("x\n"))
	mustRun(t, m, "qubes-prefs", "default_template", "fedora-41")
	mustRun(t, m, "qvm-create", "-l", "red", "--prop", "provides_network=True", "sys-net")
	// As on a real install, the netvm itself has no netvm: with the default
	// it would be upstream of itself once it becomes default_netvm.
	if r := runAdmin(t, m, "", "qubes-prefs", "default_netvm", "sys-net"); r.code != 1 ||
		lastLine(r.err) != "qubes-prefs: error: Network loop on 'sys-net'" {
		t.Fatalf("default_netvm loop: %+v", r)
	}
	mustRun(t, m, "qvm-prefs", "sys-net", "netvm", "")
	mustRun(t, m, "qubes-prefs", "default_netvm", "sys-net")
	mustRun(t, m, "qvm-create", "-l", "blue", "work")
	mustRun(t, m, "qvm-create", "--standalone", "-t", "fedora-41", "-l", "purple", "vault")
	return m
}

// setPower changes a domain's power state, as the runtime would.
func setPower(t *testing.T, m *Machine, name, power string) {
	t.Helper()
	if err := m.Update(func(st *State) error { st.Domains[name].Power = power; return nil }); err != nil {
		t.Fatal(err)
	}
}

// lastLine is the final line of s (the argparse error after the usage).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
