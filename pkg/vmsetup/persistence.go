package vmsetup

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Persistence is what survives a reboot of the VM, as qubes-sysinit records
// it from QubesDB /qubes-vm-persistence.
type Persistence string

const (
	// Full: StandaloneVM and TemplateVM keep their whole root; linger set
	// with loginctl persists.
	Full Persistence = "full"
	// RWOnly: an AppVM keeps only /home, /usr/local and /rw; linger, which
	// lives in /var/lib/systemd/linger, is lost at shutdown (qubes.md §2.4).
	RWOnly Persistence = "rw-only"
	// None: a disposable keeps nothing.
	None Persistence = "none"
	// NotQubes: no Qubes marker; an ordinary system keeps its /var.
	NotQubes Persistence = "not-qubes"
)

// DetectPersistence reads the persistent-* marker in dir (/run/qubes).
func DetectPersistence(dir string) (Persistence, error) {
	found := NotQubes
	for _, p := range []Persistence{Full, RWOnly, None} {
		_, err := os.Stat(filepath.Join(dir, "persistent-"+string(p)))
		if err == nil {
			if found != NotQubes {
				return "", fmt.Errorf("%s: both persistent-%s and persistent-%s", dir, found, p)
			}
			found = p
		} else if !os.IsNotExist(err) {
			return "", err
		}
	}
	return found, nil
}

// LingerHookName is the file name of the AppVM's boot hook.
const LingerHookName = "50-qubes-claw-linger.rc"

// LingerHook is the boot hook an AppVM needs: Qubes runs
// /rw/config/rc.local.d/*.rc as root at every boot, from the persistent
// /rw, and `loginctl enable-linger` starts the user manager at once, so the
// gated user units come up without a login.
//
// A bind-dir of /var/lib/systemd/linger would work too, but it replaces the
// template's whole linger directory for this VM and copies it once, hiding
// later template changes; the hook adds one user and nothing else.
func LingerHook(user string) []byte {
	return []byte(fmt.Sprintf(`#!/bin/sh
# Written by qubes-claw-proxy setup. In an AppVM /var comes from the template
# at each boot, so linger (/var/lib/systemd/linger) is re-enabled here; the
# user units themselves live in /home and persist.
exec loginctl enable-linger %s
`, shellQuote(user)))
}

func shellQuote(s string) string {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}
