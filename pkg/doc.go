// Package pkg is the root of qubes-claw's library code: non-CLI packages, one
// concept each, named by noun. Packages under pkg/ must not import cobra, and only
// pkg/config may import viper. No API stability is promised to other modules.
package pkg
