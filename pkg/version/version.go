// Package version holds the release version of every qubes-claw binary, set
// at build time with -ldflags "-X .../pkg/version.Version=1.2.3".
package version

import "runtime/debug"

// Version is the release version; "dev" in an unreleased build.
var Version = "dev"

// String returns the version, falling back to the module version recorded in
// the binary when ldflags did not set one.
func String() string {
	if Version != "dev" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return Version
}
