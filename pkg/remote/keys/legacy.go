package keys

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/qubes-claw/qubes-claw/pkg/remote/proto"
)

// ReadLegacyConf returns the VMs named in a qvm-remote 1.x
// /etc/qubes/remote.conf: shell assignments QVM_REMOTE_VMS="a b" (and the
// older QUBES_REMOTE_VMS / QUBES_REMOTE_VM). The file is parsed, never
// sourced; a missing file gives no VMs. Invalid names are an error, so a typo
// does not silently drop a VM.
func ReadLegacyConf(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		name, val, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: not an assignment", path, n)
		}
		switch name {
		case "QVM_REMOTE_VMS", "QUBES_REMOTE_VMS", "QUBES_REMOTE_VM":
		default:
			continue // e.g. QVM_REMOTE_VM_USER: a VM-side setting
		}
		if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') && val[len(val)-1] == val[0] {
			val = val[1 : len(val)-1]
		}
		for _, vm := range strings.FieldsFunc(val, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' }) {
			if !proto.ValidVMName(vm) {
				return nil, fmt.Errorf("%s:%d: invalid VM name %q", path, n, vm)
			}
			if !seen[vm] {
				seen[vm] = true
				out = append(out, vm)
			}
		}
	}
	return out, sc.Err()
}
