// Command qubes-claw-dist builds the qubes-claw RPM and Arch packages into
// dist/ with the nfpm library, from the layout in pkg/pkgspec.
package main

import (
	"os"

	"github.com/qubes-claw/qubes-claw/cmd/qubes-claw-dist/dist"
)

func main() { os.Exit(dist.Main(os.Args[1:], os.Stdout, os.Stderr)) }
