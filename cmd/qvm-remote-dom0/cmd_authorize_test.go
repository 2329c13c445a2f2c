package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/remote/keys"
)

func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(newRootCmd(), args, cli.Stdio{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func TestAuthorizeKeysRevoke(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "remote.d")
	t.Setenv("QVMRD_KEY_DIR", dir)
	t.Setenv("QVMRD_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	os.WriteFile(os.Getenv("QVMRD_CONFIG"), nil, 0o600)
	k := keys.Generate()

	if code, _, errs := run(t, "", "authorize", "work", "abc"); code != 1 || !strings.Contains(errs, "64 hex") {
		t.Errorf("bad key: %d %q", code, errs)
	}
	if code, _, errs := run(t, "", "authorize", "../x", k.Hex()); code != 2 {
		t.Errorf("bad VM name: %d %q", code, errs)
	}
	code, out, errs := run(t, "", "authorize", "work", k.Hex())
	if code != 0 || !strings.Contains(out, k.Fingerprint()) {
		t.Fatalf("authorize: %d %q %q", code, out, errs)
	}
	code, out, _ = run(t, k.Hex()+"\n", "authorize", "other", "-")
	if code != 0 {
		t.Fatalf("authorize from stdin: %d %q", code, out)
	}
	if fi, err := os.Stat(filepath.Join(dir, "work.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", fi, err)
	}
	code, out, _ = run(t, "", "keys")
	if code != 0 || !strings.Contains(out, "work") || !strings.Contains(out, k.Fingerprint()) || strings.Contains(out, k.Hex()) {
		t.Errorf("keys must list fingerprints, never keys: %q", out)
	}
	if code, _, _ := run(t, "", "revoke", "work"); code != 0 {
		t.Errorf("revoke: %d", code)
	}
	if code, _, errs := run(t, "", "revoke", "work"); code != 1 || !strings.Contains(errs, "no key") {
		t.Errorf("second revoke: %d %q", code, errs)
	}
	if _, out, _ := run(t, "", "keys"); strings.Contains(out, "work") {
		t.Errorf("revoked VM still listed: %q", out)
	}
}

func TestUsage(t *testing.T) {
	t.Setenv("QVMRD_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	os.WriteFile(os.Getenv("QVMRD_CONFIG"), nil, 0o600)
	for _, args := range [][]string{{"bogus"}, {"--nope"}, {"revoke"}, {"authorize"}, {"keys", "x"}} {
		if code, _, errs := run(t, "", args...); code != 2 {
			t.Errorf("%q: code %d %q", args, code, errs)
		}
	}
	if code, out, _ := run(t, "", "--version"); code != 0 || out == "" {
		t.Errorf("--version: %d %q", code, out)
	}
}
