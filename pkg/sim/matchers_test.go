package sim

import (
	"regexp"
	"testing"
)

// The hand-written name checks replace these regexps (no regexp compiles at
// start-up); they must accept exactly the same strings.
func TestNameMatchersEqualRegexps(t *testing.T) {
	inputs := []string{"", "a", "A", "0", "_", ".", "-", "vm", "vm-1", "vm_1.x", "1vm", "-vm", ".vm", "_vm",
		"vm/x", "vm x", "vm\n", "é", "ab:cd", "00:16:3e:5e:6c:00", "00:16:3E:5e:6c:00", "00:16:3e:5e:6c:0",
		"00:16:3e:5e:6c:000", "00-16-3e-5e-6c-00", "00:16:3e:5e:6c:0g", "service.x", "a..b", "x\x00"}
	for _, tt := range []struct {
		name string
		re   string
		fn   func(string) bool
	}{
		{"mac", `^([0-9a-f][0-9a-f]:){5}[0-9a-f][0-9a-f]$`, isMAC},
		{"vmname", `^[a-zA-Z][a-zA-Z0-9_.-]*$`, isVMName},
		{"feature", `^[a-zA-Z0-9_.-]+$`, validFeatureName},
		{"qubesdb-service", `^[[:alnum:]_][[:alnum:]._-]*$`, qubesdbServiceName},
	} {
		re := regexp.MustCompile(tt.re)
		for _, in := range inputs {
			if got, want := tt.fn(in), re.MatchString(in); got != want {
				t.Errorf("%s(%q) = %v, regexp says %v", tt.name, in, got, want)
			}
		}
	}
}
