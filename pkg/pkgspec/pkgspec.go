// Package pkgspec says what each qubes-claw package installs and where: files
// (source → destination, mode, owner), config files kept across upgrades,
// owned directories, scriptlets and dependencies, each with the reason it is
// there. It is plain data: the nfpm-based packager (cmd/qubes-claw-dist), the
// simulator's install step and the installer all read it, so a file lands in
// the same place whichever route put it there.
//
// A package ships the binaries of cmd/ that exist; entries that belong to a
// binary (its unit, its config) are shipped with it. So the package set grows
// as binaries land, and nothing is ever packaged in place of a missing one.
package pkgspec

import (
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Format is a package format, named as nfpm names its packagers.
type Format string

// The package formats we build.
const (
	RPM  Format = "rpm"
	Arch Format = "archlinux"
)

// Side is where a package is installed.
type Side string

// Sides.
const (
	// Dom0 packages go into dom0 (Fedora, RPM only).
	Dom0 Side = "dom0"
	// VM packages go into templates and standalone VMs.
	VM Side = "vm"
)

// Kind says how an entry is installed.
type Kind int

// Entry kinds.
const (
	// File is a regular file copied from the repository.
	File Kind = iota
	// Binary is the build output of cmd/Source.
	Binary
	// Config is a file from the repository that an admin may edit: an
	// upgrade keeps the edited copy and puts the new one beside it
	// (rpm %config(noreplace) → .rpmnew, pacman backup → .pacnew).
	Config
	// Dir is a directory the package owns (created on install, removed when
	// empty on erase).
	Dir
	// Symlink is a symbolic link at Dest pointing to Source.
	Symlink
	// Ghost is a path the package owns without shipping it (rpm %ghost; no
	// Arch equivalent, so Arch skips it).
	Ghost
)

func (k Kind) String() string {
	return [...]string{"file", "binary", "config", "dir", "symlink", "ghost"}[k]
}

// Entry is one path installed by a package.
type Entry struct {
	Kind Kind
	// Source is repository-relative for File and Config, the cmd/ name for
	// Binary, the link target for Symlink, empty for Dir and Ghost.
	Source string
	// Dest is the absolute installed path.
	Dest string
	// Mode is the permission bits; every entry sets it explicitly.
	Mode fs.FileMode
	// Owner and Group default to root.
	Owner, Group string
	// Only limits the entry to one format ("" = all).
	Only Format
	// With names the binary this entry belongs to: it is shipped only once
	// cmd/With exists. Binary entries belong to themselves.
	With string
}

// Dep is a package relation (Requires, Obsoletes, ...) and why it exists.
type Dep struct {
	// Name is the relation as the format writes it ("systemd",
	// "qvm-remote < 1:0"); file paths work for RPM only.
	Name string
	// Why says what breaks without it.
	Why string
	// Only limits the relation to one format ("" = all).
	Only Format
}

// Scripts are repository-relative paths of scriptlet files. RPM passes an
// instance count as $1, pacman a version, so each format has its own files.
type Scripts struct {
	PreInstall, PostInstall, PreRemove, PostRemove string
	// PostUpgrade is Arch only: pacman runs only *_upgrade on upgrade.
	PostUpgrade string
}

// Package describes one package.
type Package struct {
	Name string
	// Summary is one line; Description may be longer.
	Summary, Description string
	Side                 Side
	Formats              []Format
	// Epoch lifts the version above the 1.x Python packages of the same
	// name (1:0.1.0 > 0:1.1.0), so dnf and pacman upgrade them to us.
	Epoch     string
	Entries   []Entry
	Depends   []Dep
	Obsoletes []Dep
	Conflicts []Dep
	Provides  []Dep
	Scripts   map[Format]Scripts
}

// Metadata common to every package.
const (
	License    = "GPL-2.0-or-later"
	Homepage   = "https://github.com/qubes-claw/qubes-claw"
	Vendor     = "qubes-claw"
	Maintainer = "qubes-claw developers <qubes-claw@users.noreply.github.com>"
	// BuildHost is written into RPM headers instead of the real host name,
	// which would make builds differ between machines.
	BuildHost = "qubes-claw-build"
)

// Has reports whether p is built in format f.
func (p Package) Has(f Format) bool {
	for _, g := range p.Formats {
		if g == f {
			return true
		}
	}
	return false
}

// Binaries returns the names of the binaries p ships (once they exist).
func (p Package) Binaries() []string {
	var out []string
	for _, e := range p.Entries {
		if e.Kind == Binary {
			out = append(out, e.Source)
		}
	}
	return out
}

// Present tells whether cmd/NAME exists as a buildable binary.
type Present func(binary string) bool

// InTree returns the Present of the repository at root: cmd/NAME holds a
// main.go.
func InTree(root string) Present {
	return func(name string) bool {
		_, err := os.Stat(filepath.Join(root, "cmd", name, "main.go"))
		return err == nil
	}
}

// Committed returns the Present of the repository at root counting only
// binaries whose main.go is committed to git, so a build never packages
// someone's work in progress. Outside a git checkout (a source tarball) it
// falls back to InTree.
func Committed(root string) Present {
	out, err := exec.Command("git", "-C", root, "ls-files", "--", "cmd/*/main.go").Output()
	if err != nil {
		return InTree(root)
	}
	tracked := map[string]bool{}
	for _, f := range strings.Fields(string(out)) {
		tracked[path.Base(path.Dir(f))] = true
	}
	return func(name string) bool { return tracked[name] }
}

// Buildable reports whether at least one of p's binaries is present: a
// package without its binaries would be a placeholder.
func (p Package) Buildable(have Present) bool {
	for _, b := range p.Binaries() {
		if have(b) {
			return true
		}
	}
	return false
}

// For returns the entries p installs in format f when the binaries that have
// tells of exist: the declared entries, plus each present binary's config
// file (from its config spec, see configEntries), sorted by Dest.
func (p Package) For(f Format, have Present) []Entry {
	var out []Entry
	seen := map[string]bool{}
	add := func(e Entry) {
		if e.Only != "" && e.Only != f {
			return
		}
		if e.Kind == Ghost && f != RPM {
			return
		}
		if seen[e.Dest] {
			return
		}
		seen[e.Dest] = true
		out = append(out, e)
	}
	for _, e := range p.Entries {
		w := e.With
		if e.Kind == Binary {
			w = e.Source
		}
		if w == "" || have(w) {
			add(e)
		}
	}
	for _, b := range p.Binaries() {
		if have(b) {
			for _, e := range configEntries(b) {
				add(e)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dest < out[j].Dest })
	return out
}

// DepsFor returns the relations of ds that apply to format f.
func DepsFor(ds []Dep, f Format) []string {
	var out []string
	for _, d := range ds {
		if d.Only == "" || d.Only == f {
			out = append(out, d.Name)
		}
	}
	return out
}

// Find returns the package named name.
func Find(name string) (Package, bool) {
	for _, p := range All() {
		if p.Name == name {
			return p, true
		}
	}
	return Package{}, false
}
