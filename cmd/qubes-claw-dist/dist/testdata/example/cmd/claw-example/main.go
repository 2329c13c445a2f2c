// Command claw-example prints its version, as the packaged binaries do.
package main

import (
	"fmt"
	"os"

	"github.com/qubes-claw/qubes-claw/pkg/version"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Println("claw-example", version.String())
		return
	}
	fmt.Fprintln(os.Stderr, "usage: claw-example --version")
	os.Exit(2)
}
