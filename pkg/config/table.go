package config

import (
	"fmt"
	"strings"
)

// Table renders the configuration reference of the given programs as Markdown:
// per program its files and environment prefix, then one row per key with its
// flag, environment variable and default.
func Table(ds ...Description) string {
	var b strings.Builder
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("Generated from the config types by `go test ./pkg/programs -update`; do not edit by hand.\n\n")
	b.WriteString("Every program reads, later layers winning: built-in defaults → system file → user file (where\n")
	b.WriteString("listed) → environment (`PREFIX_KEY`, dots and dashes as `_`) → flags. `--config FILE` or\n")
	b.WriteString("`PREFIX_CONFIG` replaces both files. Unknown keys, unknown `PREFIX_*` variables and wrong types\n")
	b.WriteString("are errors. Every path is relocated under `$" + RootEnv + "` when it is set (used by the\n")
	b.WriteString("Qubes simulator); `~/` is relative to `$HOME`.\n")
	for _, d := range ds {
		fmt.Fprintf(&b, "\n## %s\n\n", d.Program)
		fmt.Fprintf(&b, "- system file: `%s`\n", d.SystemFile)
		if d.UserFile != "" {
			fmt.Fprintf(&b, "- user file: `%s`\n", d.UserFile)
		}
		fmt.Fprintf(&b, "- environment prefix: `%s_` (config file: `%s_CONFIG`)\n\n", d.EnvPrefix, d.EnvPrefix)
		b.WriteString("| key | flag | environment | default | description |\n|---|---|---|---|---|\n")
		for _, k := range d.Keys {
			flag := ""
			if k.Flag != "" {
				flag = "`--" + k.Flag + "`"
				if k.Short != "" {
					flag += " / `-" + k.Short + "`"
				}
			}
			def := k.Default
			if def != "" {
				def = "`" + def + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s | %s |\n", k.Name, flag, k.Env, def, strings.ReplaceAll(k.Doc, "|", "\\|"))
		}
	}
	return b.String()
}
