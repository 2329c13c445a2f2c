package simtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/qubes-claw/qubes-claw/pkg/pkgspec"
	"github.com/qubes-claw/qubes-claw/pkg/sim"
)

// InstallPackage installs the package named pkg into domain the way dnf
// would lay it out: every entry pkgspec gives for the RPM format (the format
// of dom0 and Fedora templates) is put at its destination, binaries from
// Binaries(t), files from the repository, with the modes the package sets.
// Like %config(noreplace), a config file that already exists is kept and the
// packaged one is written beside it as .rpmnew. Scriptlets are not run: a
// test enables what the installer or the user would enable.
//
// A dom0 package goes only into dom0 and a VM package only into VMs, as
// their dependencies would enforce on Qubes.
func (m *Machine) InstallPackage(domain, name string) {
	m.t.Helper()
	p, ok := pkgspec.Find(name)
	if !ok {
		m.t.Fatalf("install package %s: no such package", name)
	}
	if (p.Side == pkgspec.Dom0) != (domain == sim.Dom0) {
		m.t.Fatalf("install package %s: a %s package cannot go into %s", name, p.Side, domain)
	}
	root, err := repoRoot()
	if err != nil {
		m.t.Fatal(err)
	}
	bin := Binaries(m.t)
	var specs []string
	for _, e := range p.For(pkgspec.RPM, pkgspec.InTree(root)) {
		host := m.Sim.Path(domain, e.Dest)
		switch e.Kind {
		case pkgspec.Dir:
			if err := os.MkdirAll(host, e.Mode); err != nil {
				m.t.Fatal(err)
			}
			os.Chmod(host, e.Mode)
		case pkgspec.Symlink:
			os.MkdirAll(filepath.Dir(host), 0o755)
			os.Remove(host)
			if err := os.Symlink(e.Source, host); err != nil {
				m.t.Fatal(err)
			}
		case pkgspec.Ghost:
			// Owned, never shipped.
		case pkgspec.Binary:
			specs = append(specs, fmt.Sprintf("%s:%s:%o", filepath.Join(bin, e.Source), e.Dest, e.Mode))
		case pkgspec.File:
			specs = append(specs, fmt.Sprintf("%s:%s:%o", filepath.Join(root, e.Source), e.Dest, e.Mode))
		case pkgspec.Config:
			dest := e.Dest
			if _, err := os.Stat(host); err == nil {
				dest += ".rpmnew"
			}
			specs = append(specs, fmt.Sprintf("%s:%s:%o", filepath.Join(root, e.Source), dest, e.Mode))
		}
	}
	if len(specs) > 0 {
		m.MustRun(append([]string{"qubes-sim", "install", m.Dir, domain}, specs...)...)
	}
}

// repoRoot is the directory of the qubes-claw module.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the qubes-claw module")
	}
	return filepath.Dir(gomod), nil
}
