package dist

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/qubes-claw/qubes-claw/pkg/pkgspec"
)

// Spec renders the Qubes Builder v2 spec template (builderv2/NAME.spec.in)
// of package p from the same layout nfpm packages, so the two file lists
// cannot drift. The builder substitutes @VERSION@, @REL@ and @CHANGELOG@;
// the build runs offline from the vendored tree in the source archive.
func Spec(root string, p pkgspec.Package, have pkgspec.Present) (string, error) {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Generated from pkg/pkgspec by `go test ./dist -update` in cmd/qubes-claw-dist; do not edit.\n")
	w("%%global debug_package %%{nil}\n")
	w("%%global gomodule github.com/qubes-claw/qubes-claw\n\n")
	w("Name:           %s\n", p.Name)
	if p.Epoch != "" {
		w("Epoch:          %s\n", p.Epoch)
	}
	w("Version:        @VERSION@\nRelease:        @REL@%%{?dist}\n")
	w("Summary:        %s\nLicense:        %s\nURL:            %s\n", p.Summary, pkgspec.License, pkgspec.Homepage)
	w("Source0:        qubes-claw-%%{version}.tar.gz\n")
	w("BuildRequires:  golang\n")
	for _, d := range p.Depends {
		if d.Only == "" || d.Only == pkgspec.RPM {
			w("# %s\nRequires:       %s\n", d.Why, d.Name)
		}
	}
	for _, d := range p.Obsoletes {
		w("# %s\nObsoletes:      %s\n", d.Why, d.Name)
	}
	for _, d := range p.Conflicts {
		w("# %s\nConflicts:      %s\n", d.Why, d.Name)
	}
	for _, d := range p.Provides {
		w("# %s\nProvides:       %s\n", d.Why, d.Name)
	}
	w("\n%%description\n%s\n\n", p.Description)
	w("%%prep\n%%setup -q -n qubes-claw-%%{version}\n\n")
	w("%%build\n# Offline: vendored modules only, the build root's own Go.\n")
	w("export GOFLAGS='-mod=vendor -trimpath -buildvcs=false' GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0\n")
	entries := p.For(pkgspec.RPM, have)
	for _, e := range entries {
		if e.Kind == pkgspec.Binary {
			w("go build -ldflags '-s -w -X %%{gomodule}/pkg/version.Version=%%{version}' -o _build/%s ./cmd/%s\n", e.Source, e.Source)
		}
	}
	w("\n%%install\n")
	for _, e := range entries {
		dst := "%{buildroot}" + e.Dest
		switch e.Kind {
		case pkgspec.Binary:
			w("install -D -m %04o _build/%s %s\n", e.Mode, e.Source, dst)
		case pkgspec.File, pkgspec.Config:
			w("install -D -m %04o %s %s\n", e.Mode, e.Source, dst)
		case pkgspec.Dir:
			w("install -d -m %04o %s\n", e.Mode, dst)
		case pkgspec.Symlink:
			w("install -d %%{buildroot}%s\nln -s %s %s\n", path.Dir(e.Dest), e.Source, dst)
		}
	}
	s := p.Scripts[pkgspec.RPM]
	for _, sc := range []struct{ section, file string }{
		{"pre", s.PreInstall}, {"post", s.PostInstall}, {"preun", s.PreRemove}, {"postun", s.PostRemove},
	} {
		if sc.file == "" {
			continue
		}
		body, err := os.ReadFile(filepath.Join(root, sc.file))
		if err != nil {
			return "", err
		}
		w("\n%%%s\n%s", sc.section, strings.ReplaceAll(string(body), "%", "%%"))
	}
	w("\n%%files\n")
	for _, e := range entries {
		attr := fmt.Sprintf("%%attr(%04o,%s,%s) ", e.Mode, orRoot(e.Owner), orRoot(e.Group))
		switch e.Kind {
		case pkgspec.Binary, pkgspec.File:
			w("%s%s\n", attr, e.Dest)
		case pkgspec.Config:
			w("%%config(noreplace) %s%s\n", attr, e.Dest)
		case pkgspec.Dir:
			w("%%dir %s%s\n", attr, e.Dest)
		case pkgspec.Symlink:
			w("%s\n", e.Dest)
		case pkgspec.Ghost:
			w("%%ghost %s%s\n", attr, e.Dest)
		}
	}
	w("\n%%changelog\n@CHANGELOG@\n")
	return b.String(), nil
}
