// Package policy parses and evaluates qrexec policy in the Qubes R4.1+ format
// (/etc/qubes/policy.d and /run/qubes/policy.d), following qubes-core-qrexec's
// qrexec/policy/parser.py as summarised in shared/reference/qubes.md §1.
//
// The package is used by the simulator's qrexec-client-vm and by user-facing
// diagnostics ("why was my connection refused"), so evaluation and explanation
// share a single code path: Evaluate is Explain without the trace.
//
// Loading (LoadDirs, §1.1): only regular files named *.policy that do not start
// with "." are read. If any such file name contains a character outside
// 0-9a-z_.- the whole configuration is unusable and every evaluation fails, as
// qrexec refuses every call in that case. Files from all directories are merged
// and sorted by basename in C-locale (byte) order; the first directory given wins
// when a basename appears twice, so pass /run/qubes/policy.d before
// /etc/qubes/policy.d.
//
// Directives (§1.4): !include PATH, !include-dir DIR and
// !include-service SERVICE ARG PATH. A relative PATH is resolved the way qrexec
// resolves it: against the directory of the top-level policy file being loaded
// (for a file read by LoadDirs or Parse that is the including file's own
// directory). qrexec does not re-base paths in nested includes, which is why the
// stock include/admin-global-ro can say "!include include/admin-global-rwx".
// !compat-4.0 (the R4.0 /etc/qubes-rpc/policy import) is accepted and ignored:
// legacy policy is not modelled.
//
// Differences from qrexec, all deliberate: uuid: qube names are treated as
// literal names (they never match); an ask rule whose default_target= is not
// among the offered targets drops the default instead of failing the call (qrexec
// hits an assertion there); include nesting deeper than 32 levels is an error
// (qrexec would recurse until Python gives up).
package policy
