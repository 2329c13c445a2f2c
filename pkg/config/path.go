package config

import (
	"os"
	"path/filepath"
	"strings"
)

// RootEnv relocates every absolute Path under a directory (see the package doc).
const RootEnv = "QUBES_CLAW_ROOT"

// Path is a filesystem location taken from configuration. Fields of this type
// are resolved by Load (home expansion, relocation under $QUBES_CLAW_ROOT).
type Path string

// String returns the path.
func (p Path) String() string { return string(p) }

// Join returns p joined with elem.
func (p Path) Join(elem ...string) string {
	return filepath.Join(append([]string{string(p)}, elem...)...)
}

// Resolve expands "~/" against home and re-roots an absolute path under root
// (when root is not empty). Relative paths are left alone: they are relative to
// the working directory, which is the caller's choice.
func Resolve(p Path, root, home string) Path {
	s := string(p)
	switch {
	case s == "":
		return p
	case s == "~" || strings.HasPrefix(s, "~/"):
		return Path(filepath.Join(home, strings.TrimPrefix(s, "~")))
	case filepath.IsAbs(s) && root != "":
		if within(root, s) {
			// Already inside the root (e.g. a path the simulator computed).
			return Path(filepath.Clean(s))
		}
		return Path(filepath.Join(root, s))
	}
	return p
}

// ResolveEnv resolves p against $QUBES_CLAW_ROOT and $HOME.
func ResolveEnv(p Path) Path { return Resolve(p, os.Getenv(RootEnv), os.Getenv("HOME")) }

func within(root, p string) bool {
	rel, err := filepath.Rel(filepath.Clean(root), filepath.Clean(p))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// Secret is a configuration value that must never be printed or logged: its
// String and MarshalText methods redact it. Use Reveal where the value is needed.
type Secret string

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// MarshalText redacts the secret in JSON/YAML output.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }
