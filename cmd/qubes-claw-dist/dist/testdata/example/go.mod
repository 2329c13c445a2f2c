// A stand-in repository for the packager's own tests: one tiny binary that
// reports its version through pkg/version like every qubes-claw binary.
module example.com/claw-example

go 1.24.0

require github.com/qubes-claw/qubes-claw v0.0.0

replace github.com/qubes-claw/qubes-claw => ../../../../..
