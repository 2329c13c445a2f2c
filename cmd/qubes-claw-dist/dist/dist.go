// Package dist turns the package layouts of pkg/pkgspec into RPM and Arch
// packages with the nfpm library. The output is reproducible: file times come
// from SOURCE_DATE_EPOCH or the last commit, the RPM build host is fixed, and
// binaries are built with -trimpath and without VCS stamps.
package dist

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/chglog"
	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/arch" // registers "archlinux"
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers "rpm"

	"github.com/qubes-claw/qubes-claw/pkg/pkgspec"
)

// versionVar is set by -ldflags -X in every binary (pkg/version).
const versionVar = "github.com/qubes-claw/qubes-claw/pkg/version.Version"

// Options say what to build and where.
type Options struct {
	// Root is the repository root (the product module).
	Root string
	// Out receives the packages.
	Out string
	// Version and Release default to the version and rel files in Root.
	Version, Release string
	// MTime is written as every file's time; zero means SOURCE_DATE_EPOCH,
	// else the time of the last commit in Root.
	MTime time.Time
	// Formats to build; empty means every format of each package.
	Formats []pkgspec.Format
	// Packages to consider; nil means pkgspec.All().
	Packages []pkgspec.Package
	// Have tells which binaries exist; nil means pkgspec.Committed(Root).
	Have pkgspec.Present
	// Log receives one line per package written (nil = discard).
	Log io.Writer
	// Replace maps repository-relative sources to files packaged in their
	// place (tests ship a changed default config in an upgrade with it).
	Replace map[string]string

	// changelog is the chglog YAML file nfpm reads for RPMs.
	changelog string
}

// Result is one package file written.
type Result struct {
	Package string
	Format  pkgspec.Format
	Path    string
}

// Build compiles the binaries of every buildable package and writes its
// packages into o.Out.
func Build(ctx context.Context, o Options) ([]Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "qubes-claw-dist-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	if o.changelog, err = writeChangelog(work); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	bins := map[string]string{}
	var out []Result
	for _, p := range o.Packages {
		if !p.Buildable(o.Have) {
			continue
		}
		for _, b := range p.Binaries() {
			if !o.Have(b) || bins[b] != "" {
				continue
			}
			dst := filepath.Join(work, b)
			if err := goBuild(ctx, o.Root, b, o.Version, dst); err != nil {
				return out, err
			}
			bins[b] = dst
		}
		for _, f := range p.Formats {
			if !o.wants(f) {
				continue
			}
			info, err := Info(p, f, o, bins)
			if err != nil {
				return out, fmt.Errorf("%s (%s): %w", p.Name, f, err)
			}
			path, err := write(info, string(f), o.Out)
			if err != nil {
				return out, fmt.Errorf("%s (%s): %w", p.Name, f, err)
			}
			out = append(out, Result{Package: p.Name, Format: f, Path: path})
			fmt.Fprintf(o.Log, "%s\n", path)
		}
	}
	return out, nil
}

func (o *Options) defaults() error {
	if o.Root == "" {
		return errors.New("no repository root")
	}
	if o.Out == "" {
		o.Out = filepath.Join(o.Root, "dist")
	}
	var err error
	if o.Version == "" {
		if o.Version, err = firstLine(filepath.Join(o.Root, "version")); err != nil {
			return err
		}
	}
	if o.Release == "" {
		if o.Release, err = firstLine(filepath.Join(o.Root, "rel")); err != nil {
			return err
		}
	}
	if o.MTime.IsZero() {
		if o.MTime, err = sourceDate(o.Root); err != nil {
			return err
		}
	}
	if o.Packages == nil {
		o.Packages = pkgspec.All()
	}
	if o.Have == nil {
		o.Have = pkgspec.Committed(o.Root)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return nil
}

func (o *Options) wants(f pkgspec.Format) bool {
	if len(o.Formats) == 0 {
		return true
	}
	for _, g := range o.Formats {
		if g == f {
			return true
		}
	}
	return false
}

func firstLine(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return line, nil
}

// sourceDate is the time stamped on every packaged file: SOURCE_DATE_EPOCH
// (the reproducible-builds convention) or the last commit's time, so two
// builds of one commit are identical.
func sourceDate(root string) (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		out, err := exec.Command("git", "-C", root, "log", "-1", "--format=%ct").Output()
		if err != nil {
			return time.Time{}, fmt.Errorf("no SOURCE_DATE_EPOCH and no git commit time: %w", err)
		}
		s = strings.TrimSpace(string(out))
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("source date %q: %w", s, err)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// goBuild compiles cmd/NAME of the product module as a static, reproducible
// binary: no cgo, no build paths, no VCS stamp, version set by the linker.
func goBuild(ctx context.Context, root, name, version, dst string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X "+versionVar+"="+version, "-o", dst, "./cmd/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/%s: %w\n%s", name, err, out)
	}
	return nil
}

// Info translates package p into nfpm's description for format f. bins maps
// binary names to their built files.
func Info(p pkgspec.Package, f pkgspec.Format, o Options, bins map[string]string) (*nfpm.Info, error) {
	var contents files.Contents
	for _, e := range p.For(f, o.Have) {
		c := &files.Content{
			Destination: e.Dest,
			FileInfo: &files.ContentFileInfo{
				Owner: orRoot(e.Owner), Group: orRoot(e.Group), Mode: e.Mode, MTime: o.MTime,
			},
		}
		switch e.Kind {
		case pkgspec.Binary:
			c.Source = bins[e.Source]
			if c.Source == "" {
				return nil, fmt.Errorf("binary %s was not built", e.Source)
			}
		case pkgspec.File:
			c.Source = o.source(e.Source)
			if f == pkgspec.RPM && strings.HasPrefix(e.Dest, "/usr/share/doc/") {
				// rpmbuild flags files under %_docdir as %doc (skipped with
				// tsflags=nodocs); do the same. Arch drops doc entries, so RPM only.
				c.Type = files.TypeRPMDoc
			}
		case pkgspec.Config:
			c.Source = o.source(e.Source)
			c.Type = files.TypeConfigNoReplace
		case pkgspec.Dir:
			c.Type = files.TypeDir
		case pkgspec.Symlink:
			c.Source = e.Source
			c.Type = files.TypeSymlink
			c.FileInfo = &files.ContentFileInfo{MTime: o.MTime}
		case pkgspec.Ghost:
			c.Type = files.TypeRPMGhost
		}
		contents = append(contents, c)
	}
	desc := p.Description
	if f == pkgspec.Arch {
		// .PKGINFO's pkgdesc is one line.
		desc = p.Summary
	}
	info := &nfpm.Info{
		Name:        p.Name,
		Arch:        "amd64",
		Platform:    "linux",
		Epoch:       p.Epoch,
		Version:     o.Version,
		Release:     o.Release,
		Maintainer:  pkgspec.Maintainer,
		Description: desc,
		Vendor:      pkgspec.Vendor,
		Homepage:    pkgspec.Homepage,
		License:     pkgspec.License,
		// Globs in our paths would be a bug, never a feature.
		DisableGlobbing: true,
		MTime:           o.MTime,
		Overridables: nfpm.Overridables{
			Depends:   pkgspec.DepsFor(p.Depends, f),
			Replaces:  pkgspec.DepsFor(p.Obsoletes, f),
			Conflicts: pkgspec.DepsFor(p.Conflicts, f),
			Provides:  pkgspec.DepsFor(p.Provides, f),
			Contents:  contents,
			RPM: nfpm.RPM{
				Summary:     p.Summary,
				Group:       "Qubes",
				Compression: "zstd",
				BuildHost:   pkgspec.BuildHost,
				Packager:    pkgspec.Maintainer,
			},
			ArchLinux: nfpm.ArchLinux{Packager: pkgspec.Maintainer},
		},
	}
	s := p.Scripts[f]
	info.Scripts = nfpm.Scripts{
		PreInstall: rootPath(o.Root, s.PreInstall), PostInstall: rootPath(o.Root, s.PostInstall),
		PreRemove: rootPath(o.Root, s.PreRemove), PostRemove: rootPath(o.Root, s.PostRemove),
	}
	info.ArchLinux.Scripts.PostUpgrade = rootPath(o.Root, s.PostUpgrade)
	if f == pkgspec.RPM {
		info.Changelog = o.changelog
		if p.Epoch != "" {
			// rpmpack's own self-provide drops the epoch; rpmbuild's has it, and
			// a 1.x "Requires: qvm-remote-dom0 >= 1.1.0" needs it to see us as newer.
			info.Provides = append(info.Provides, fmt.Sprintf("%s = %s:%s-%s", p.Name, p.Epoch, o.Version, o.Release))
		}
	}
	info = nfpm.WithDefaults(info)
	return info, info.Validate()
}

func (o Options) source(rel string) string {
	if r, ok := o.Replace[rel]; ok {
		return r
	}
	return filepath.Join(o.Root, rel)
}

func orRoot(s string) string {
	if s == "" {
		return "root"
	}
	return s
}

func rootPath(root, rel string) string {
	if rel == "" {
		return ""
	}
	return filepath.Join(root, rel)
}

// write packages info as format into dir, through a temporary file so a
// failed build leaves no truncated package behind.
func write(info *nfpm.Info, format, dir string) (string, error) {
	pkgr, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	name := pkgr.ConventionalFileName(info)
	tmp, err := os.CreateTemp(dir, ".tmp-"+name+"-")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if err := pkgr.Package(info, tmp); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	return path, os.Rename(tmp.Name(), path)
}

// writeChangelog writes pkgspec's changelog in the chglog YAML that nfpm
// turns into RPM changelog tags.
func writeChangelog(dir string) (string, error) {
	var entries chglog.ChangeLogEntries
	for _, c := range pkgspec.Changelog() {
		e := &chglog.ChangeLog{Semver: c.Version, Date: c.Date, Packager: c.Author}
		for _, n := range c.Notes {
			e.Changes = append(e.Changes, &chglog.ChangeLogChange{Note: n})
		}
		entries = append(entries, e)
	}
	path := filepath.Join(dir, "changelog.yml")
	return path, entries.Save(path)
}

// Sorted returns rs ordered by path, for stable output.
func Sorted(rs []Result) []Result {
	out := append([]Result(nil), rs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
