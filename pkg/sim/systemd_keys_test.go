package sim

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestSystemdKnownKeys: keys systemd 256 accepts load without a warning
// (resource limits, sandboxing, cgroup, kill and logging settings the
// simulator ignores); unknown, removed and post-256 keys warn as systemd
// would, and [Service] keeps only the compatibility names of [Unit] keys.
func TestSystemdKnownKeys(t *testing.T) {
	m, err := CreateMachine(filepath.Join(t.TempDir(), "m"), Info{})
	if err != nil {
		t.Fatal(err)
	}
	g := systemManager(m, Dom0)
	writeFile(t, m, Dom0, "/etc/systemd/system/k.service", []byte(`[Unit]
Description=keys
Documentation=man:k(8)
BindTo=b.service
Conflicts=c.service
StartLimitAction=none
ConditionACPower=true
AssertPathExists=/
ConditionFirmware=uefi
AssertFirmware=uefi
ConditionKernelModuleLoaded=xen
Nonsense=1
RequiresOverridable=r.service
IgnoreOnSnapshot=yes
[Service]
ExecStart=/bin/true
LimitCORE=infinity
LimitNOFILE=4096
LimitMEMLOCK=1M
MemoryHigh=1G
CPUWeight=50
IOWeight=10
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
ReadWritePaths=/var/lib/k
CapabilityBoundingSet=
SystemCallFilter=@system-service
RestrictSUIDSGID=yes
SendSIGHUP=yes
FinalKillSignal=SIGKILL
StandardOutput=journal
LogLevelMax=info
PassEnvironment=LANG
OOMPolicy=stop
StartLimitInterval=20s
StartLimitIntervalSec=30s
PrivatePIDs=yes
Bogus=x
SysVStartPriority=1
[Install]
WantedBy=multi-user.target
UpheldBy=u.target
Frobnicate=1
`))
	u, err := g.readUnit("k.service")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range u.Warnings {
		_, msg, _ := strings.Cut(w, ": ")
		got = append(got, msg)
	}
	want := []string{
		"ConditionACPower is not evaluated by the simulator (treated as met)",
		"Unknown key name 'AssertFirmware' in section 'Unit', ignoring.",
		"ConditionFirmware is not evaluated by the simulator (treated as met)",
		"Unknown key name 'ConditionKernelModuleLoaded' in section 'Unit', ignoring.",
		"Unknown key name 'Nonsense' in section 'Unit', ignoring.",
		"Unit dependency type RequiresOverridable is obsolete, replacing by Requires, please update your unit file",
		"Support for option IgnoreOnSnapshot= has been removed and it is ignored",
		"Unknown key name 'StartLimitIntervalSec' in section 'Service', ignoring.",
		"Unknown key name 'PrivatePIDs' in section 'Service', ignoring.",
		"Unknown key name 'Bogus' in section 'Service', ignoring.",
		"Support for option SysVStartPriority= has been removed and it is ignored",
		"Unknown key name 'Frobnicate' in section 'Install', ignoring.",
	}
	// File order: the ConditionFirmware line precedes AssertFirmware.
	want[1], want[2] = want[2], want[1]
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !reflect.DeepEqual(u.Requires, []string{"b.service", "r.service"}) {
		t.Errorf("Requires %q (BindTo=, RequiresOverridable=)", u.Requires)
	}
	// StartLimitInterval= in [Service] is the compatibility name; the
	// ignored StartLimitIntervalSec= there changes nothing.
	if u.StartLimitInterval.String() != "20s" {
		t.Errorf("StartLimitInterval %v", u.StartLimitInterval)
	}
	if len(u.Conditions) != 1 || u.Conditions[0].String() != "AssertPathExists=/" {
		t.Errorf("conditions %v", u.Conditions)
	}
	if u.Bad != "" || !u.hasInstall() {
		t.Errorf("bad %q install %v", u.Bad, u.hasInstall())
	}
}

func TestSystemdKeyLists(t *testing.T) {
	for _, tt := range []struct {
		section, key string
		known        bool
	}{
		{"Service", "LimitCORE", true},
		{"Service", "LimitCOR", false},
		{"Service", "imitCORE", false},
		{"Service", "LimitRTTIME", true},
		{"Service", "CoredumpReceive", true},
		{"Service", "WatchdogSignal", true},
		{"Service", "PIDFile", true},
		{"Service", "LimitCORE LimitNOFILE", false},
		{"Service", "", false},
		{"Unit", "LimitCORE", false},
		{"Unit", "Description", true},
		{"Unit", "CollectMode", true},
		{"Unit", "ConditionPathExists", true},
		{"Unit", "AssertOSRelease", true},
		{"Unit", "Condition", false},
		{"Install", "DefaultInstance", true},
		{"Install", "Description", false},
		{"Socket", "ListenStream", false},
	} {
		if got := systemdKnowsKey(tt.section, tt.key); got != tt.known {
			t.Errorf("systemdKnowsKey(%q, %q) = %v, want %v", tt.section, tt.key, got, tt.known)
		}
	}
}
