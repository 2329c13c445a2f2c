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

// QubesBuilder renders the component's .qubesbuilder: dom0 packages build
// for the host (RPM only: dom0 is Fedora), VM packages for templates as RPMs
// and Arch packages, one spec or PKGBUILD directory per package.
func QubesBuilder(pkgs []pkgspec.Package) string {
	var host, vmRPM, vmArch []string
	for _, p := range pkgs {
		switch {
		case p.Side == pkgspec.Dom0 && p.Has(pkgspec.RPM):
			host = append(host, "builderv2/"+p.Name+".spec")
		case p.Side == pkgspec.VM:
			if p.Has(pkgspec.RPM) {
				vmRPM = append(vmRPM, "builderv2/"+p.Name+".spec")
			}
			if p.Has(pkgspec.Arch) {
				vmArch = append(vmArch, ArchDir(p))
			}
		}
	}
	var b strings.Builder
	b.WriteString("# Generated from pkg/pkgspec by `go test ./dist -update` in cmd/qubes-claw-dist; do not edit.\n" +
		"# Qubes Builder v2 component. builderv2/NAME.spec.in and builderv2/archlinux/NAME/PKGBUILD.in\n" +
		"# get @VERSION@ from version and @REL@ from rel; they build offline from the vendored Go\n" +
		"# modules in the source archive. A package appears once one of its binaries is committed.\n")
	list := func(indent string, items []string) {
		b.WriteString(indent + "build:\n")
		for _, i := range items {
			b.WriteString(indent + "- " + i + "\n")
		}
	}
	if len(host) > 0 {
		b.WriteString("host:\n  rpm:\n")
		list("    ", host)
	}
	if len(vmRPM)+len(vmArch) > 0 {
		b.WriteString("vm:\n")
		if len(vmRPM) > 0 {
			b.WriteString("  rpm:\n")
			list("    ", vmRPM)
		}
		if len(vmArch) > 0 {
			b.WriteString("  archlinux:\n")
			list("    ", vmArch)
		}
	}
	return b.String()
}

// ArchDir is the repository directory holding p's PKGBUILD.in. Each package
// has its own: epoch and pkgver are per PKGBUILD, not per split package, and
// only qvm-remote carries the epoch that lifts it above 1.x.
func ArchDir(p pkgspec.Package) string { return "builderv2/archlinux/" + p.Name }

// PKGBUILD renders the Builder v2 PKGBUILD template of p from the layout
// nfpm packages as Arch, so makepkg and nfpm ship the same files.
func PKGBUILD(p pkgspec.Package, have pkgspec.Present) (string, error) {
	if s := p.Scripts[pkgspec.Arch]; s != (pkgspec.Scripts{}) {
		// An install= file would have to sit beside the PKGBUILD; no VM
		// package has Arch scriptlets yet, so that is not generated.
		return "", fmt.Errorf("%s: Arch scriptlets are not rendered into PKGBUILDs yet", p.Name)
	}
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	w("# Generated from pkg/pkgspec by `go test ./dist -update` in cmd/qubes-claw-dist; do not edit.\n")
	w("# Maintainer: %s\n\n", pkgspec.Maintainer)
	w("pkgname=%s\n", p.Name)
	if p.Epoch != "" {
		w("epoch=%s\n", p.Epoch)
	}
	w("pkgver=@VERSION@\npkgrel=@REL@\n")
	w("pkgdesc=%s\narch=('x86_64')\nurl=%s\nlicense=(%s)\n", q(p.Summary), q(pkgspec.Homepage), q(pkgspec.License))
	rel := func(field string, ds []pkgspec.Dep) {
		var items []string
		for _, d := range ds {
			if d.Only == "" || d.Only == pkgspec.Arch {
				items = append(items, "  # "+d.Why+"\n  "+q(d.Name)+"\n")
			}
		}
		if len(items) > 0 {
			w("%s=(\n%s)\n", field, strings.Join(items, ""))
		}
	}
	rel("depends", p.Depends)
	rel("replaces", p.Obsoletes)
	rel("conflicts", p.Conflicts)
	rel("provides", p.Provides)
	w("makedepends=('go')\n")
	entries := p.For(pkgspec.Arch, have)
	var backup []string
	for _, e := range entries {
		if e.Kind == pkgspec.Config {
			backup = append(backup, q(strings.TrimPrefix(e.Dest, "/")))
		}
	}
	if len(backup) > 0 {
		w("backup=(%s)\n", strings.Join(backup, " "))
	}
	w("options=('!debug')\n")
	w("_pkgnvr=\"${pkgname}-${pkgver}-${pkgrel}\"\nsource=(\"${_pkgnvr}.tar.gz\")\nsha256sums=('SKIP')\n\n")
	w("build() {\n  cd \"${_pkgnvr}\"\n  # Offline: vendored modules only, the build root's own Go.\n")
	w("  export GOFLAGS='-mod=vendor -trimpath -buildvcs=false' GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0\n")
	for _, e := range entries {
		if e.Kind == pkgspec.Binary {
			w("  go build -ldflags \"-s -w -X %s=${pkgver}\" -o _build/%s ./cmd/%s\n", versionVar, e.Source, e.Source)
		}
	}
	w("}\n\npackage() {\n  cd \"${_pkgnvr}\"\n")
	for _, e := range entries {
		dst := "\"${pkgdir}" + e.Dest + "\""
		switch e.Kind {
		case pkgspec.Binary:
			w("  install -D -m %04o _build/%s %s\n", e.Mode, e.Source, dst)
		case pkgspec.File, pkgspec.Config:
			w("  install -D -m %04o %s %s\n", e.Mode, e.Source, dst)
		case pkgspec.Dir:
			w("  install -d -m %04o %s\n", e.Mode, dst)
		case pkgspec.Symlink:
			w("  install -d \"${pkgdir}%s\"\n  ln -s %s %s\n", path.Dir(e.Dest), e.Source, dst)
		}
	}
	w("}\n")
	return b.String(), nil
}
