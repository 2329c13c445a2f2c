package dist

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/qubes-claw/qubes-claw/pkg/pkgspec"
)

// Main is the qubes-claw-dist command line; it returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("qubes-claw-dist", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", "", "repository root (default: found upwards from the working directory)")
	out := fs.String("out", "", "output directory (default ROOT/dist)")
	formats := fs.String("formats", "", "comma-separated formats: rpm,archlinux (default all)")
	only := fs.String("packages", "", "comma-separated package names (default all buildable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: qubes-claw-dist [flags]\n\nBuilds the qubes-claw packages whose binaries exist in cmd/ into dist/.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	o := Options{Root: *root, Out: *out, Log: stdout}
	if o.Root == "" {
		var err error
		if o.Root, err = findRoot(); err != nil {
			fmt.Fprintln(stderr, "qubes-claw-dist:", err)
			return 1
		}
	}
	for _, f := range split(*formats) {
		o.Formats = append(o.Formats, pkgspec.Format(f))
	}
	if names := split(*only); names != nil {
		o.Packages = []pkgspec.Package{}
		for _, n := range names {
			p, ok := pkgspec.Find(n)
			if !ok {
				fmt.Fprintf(stderr, "qubes-claw-dist: no package %q\n", n)
				return 2
			}
			o.Packages = append(o.Packages, p)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rs, err := Build(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "qubes-claw-dist:", err)
		return 1
	}
	if len(rs) == 0 {
		fmt.Fprintln(stderr, "qubes-claw-dist: no package has a binary in cmd/ yet")
	}
	return 0
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// findRoot walks up to the directory holding the product module's go.mod.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/qubes-claw/qubes-claw\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the qubes-claw repository; use -root")
		}
		dir = parent
	}
}
