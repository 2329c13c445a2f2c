// Package pkg is the root of qubes-claw's library code: one package per
// concept, named by noun. The cobra command trees live in cmd/NAME beside each
// thin main.go; under pkg/ only pkg/cli imports cobra and only pkg/config
// imports viper. No API stability is promised to other modules.
package pkg
