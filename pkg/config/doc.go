// Package config is the one configuration loader of every qubes-claw binary.
//
// Layers, later ones winning: the built-in defaults of a typed struct → the
// system file (YAML, shipped commented in configs/) → the user file, for the
// programs that have one → environment variables with the program's own prefix
// → command-line flags. Loading is strict: an unknown key or a value of the
// wrong type is an error naming the file (or variable) and the key.
//
// Every filesystem location a program touches is a Path-typed key, so tests and
// the Qubes simulator can relocate all of them: when $QUBES_CLAW_ROOT is set,
// every absolute Path value (defaults, files, environment and flags alike) is
// taken as a path inside that root. A value starting with "~/" is relative to
// $HOME and is not re-rooted (the simulator already points HOME into the root).
//
// Keys are case-insensitive (viper folds them), so case-sensitive data such as
// VM names lives in values, never in keys.
//
// Only this package imports viper; it hands typed structs to the rest.
package config
