// Package e2e holds the installer's end-to-end tests: qubes-claw-install and
// the Salt formula's test applier run against fresh simulated Qubes machines
// (pkg/sim/simtest), checked through the simulated qvm-* tools and files.
package e2e
