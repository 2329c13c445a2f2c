package sim_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/sim"
	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
)

func simtestSpawn(exe, portFile string) sim.SpawnRequest {
	return sim.SpawnRequest{
		Argv: []string{exe, "-test.run=^TestRuntimeHelperProcess$"},
		Env:  []string{"SIM_RUNTIME_HELPER=echo-server", "PORT_FILE=" + portFile},
		Tag:  "echo-server",
	}
}

// allBytes is every byte value, twice, so a binary-unsafe copy shows.
func allBytes() []byte {
	var b []byte
	for r := 0; r < 2; r++ {
		for i := 0; i < 256; i++ {
			b = append(b, byte(i))
		}
	}
	return b
}

func TestRuntimeQvmRunPassIO(t *testing.T) {
	m := simtest.New(t)
	m.Template("tpl")
	m.AppVM("work", "tpl")
	bin := allBytes()
	tests := []struct {
		name           string
		argv           []string
		stdin          []byte
		stdout, stderr string
		code           int
	}{
		{"stdout and stderr apart", []string{"qvm-run", "-p", "work", "echo out; echo err >&2"}, nil, "out\n", "err\n", 0},
		{"stdin to the command", []string{"qvm-run", "--pass-io", "work", "tr a-z A-Z"}, []byte("hello\n"), "HELLO\n", "", 0},
		{"binary stdin to stdout", []string{"qvm-run", "-p", "work", "cat"}, bin, string(bin), "", 0},
		{"binary stdin to stderr", []string{"qvm-run", "-p", "work", "cat >&2"}, bin, "", string(bin), 0},
		{"args run without shell", []string{"qvm-run", "-p", "work", "printf", "%s|", "a b", "$HOME", ";"}, nil, "a b|$HOME|;|", "", 0},
		{"no-shell", []string{"qvm-run", "-p", "--no-shell", "work", "echo"}, nil, "\n", "", 0},
		{"domain context", []string{"qvm-run", "-p", "work", `echo "$QUBES_SIM_DOMAIN $USER ${HOME#$QUBES_CLAW_ROOT} $(pwd)"`}, nil, "", "", 0},
		{"root user", []string{"qvm-run", "-p", "-u", "root", "work", `echo "$USER ${HOME#$QUBES_CLAW_ROOT}"`}, nil, "root /root\n", "", 0},
		{"without pass-io nothing passes", []string{"qvm-run", "work", "echo out; echo err >&2; exit 3"}, []byte("x"), "",
			"Running 'echo out; echo err >&2; exit 3' on work\n", 3},
		{"killed by signal", []string{"qvm-run", "-p", "work", "kill -9 $$"}, nil, "", "", 137},
		{"missing command", []string{"qvm-run", "-p", "work", "/nonexistent/cmd", "x"}, nil, "", "*", 127},
	}
	for _, code := range []int{0, 1, 2, 42, 125, 126, 127, 128, 200, 255} {
		tests = append(tests, struct {
			name           string
			argv           []string
			stdin          []byte
			stdout, stderr string
			code           int
		}{"exit " + strconv.Itoa(code), []string{"qvm-run", "-p", "work", "exit " + strconv.Itoa(code)}, nil, "", "", code})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := m.Run(simtest.Cmd{Argv: tt.argv, Stdin: tt.stdin})
			if tt.name == "domain context" {
				home := m.Sim.Home("work")
				want := "work user /home/user " + home + "\n"
				if r.Stdout != want || r.Code != 0 {
					t.Fatalf("got %v, want stdout %q", r, want)
				}
				return
			}
			if r.Code != tt.code || r.Stdout != tt.stdout || (tt.stderr != "*" && r.Stderr != tt.stderr) {
				t.Fatalf("got %v\nwant exit %d stdout %q stderr %q", r, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

func TestRuntimeQvmRunAutostart(t *testing.T) {
	m := simtest.New(t)
	m.Template("tpl")
	m.AppVM("work", "tpl")
	if m.Running("work") {
		t.Fatal("a new VM runs")
	}
	for _, argv := range [][]string{
		{"qvm-run", "-p", "-n", "work", "echo ran"},
		{"qvm-run", "--pass-io", "--no-autostart", "work", "echo ran"},
		{"qvm-run", "--no-auto", "-p", "work", "echo ran"},
	} {
		r := m.Host(argv...)
		if r.Code != 1 || r.Stdout != "" || r.Stderr != "" {
			t.Errorf("%q on a halted VM: %v, want exit 1 and no output", argv, r)
		}
	}
	// Without -p the verbosity is one higher: the skip is reported.
	if r := m.Host("qvm-run", "-n", "work", "true"); r.Code != 1 || !strings.Contains(r.Stderr, "work") {
		t.Errorf("qvm-run -n without -p: %v", r)
	}
	if m.Running("work") {
		t.Fatal("--no-autostart started the VM")
	}
	if n := m.CountSpawns("work"); n != 0 {
		t.Fatalf("%d processes ran in the halted VM", n)
	}
	if r := m.Host("qvm-run", "-p", "work", "echo ran"); r.Code != 0 || r.Stdout != "ran\n" {
		t.Fatalf("autostart: %v", r)
	}
	if !m.Running("work") {
		t.Fatal("qvm-run did not start the VM")
	}
	st, err := m.Sim.Load()
	if err != nil {
		t.Fatal(err)
	}
	if p := st.Domain("work").Power; p != sim.Running {
		t.Fatalf("power state %q after autostart", p)
	}
	if r := m.Host("qvm-run", "-p", "-n", "work", "echo again"); r.Code != 0 || r.Stdout != "again\n" {
		t.Fatalf("--no-autostart on a running VM: %v", r)
	}
}

func TestRuntimeQvmRunErrors(t *testing.T) {
	m := simtest.New(t)
	tests := []struct {
		argv   []string
		code   int
		stderr string
	}{
		{[]string{"qvm-run", "nope", "true"}, 2, "qvm-run: error: no such domain: 'nope'\n"},
		{[]string{"qvm-run", "-p", "nope", "true"}, 2, "qvm-run: error: no such domain: 'nope'\n"},
		{[]string{"qvm-run"}, 2, "qvm-run: error: the following arguments are required: VMNAME, COMMAND\n"},
		{[]string{"qvm-run", "--bogus", "dom0", "true"}, 2, "qvm-run: error: unrecognized arguments: --bogus\n"},
		{[]string{"qvm-run", "--localcmd", "cat", "dom0", "true"}, 2, "qvm-run: error: --localcmd have no effect without --pass-io\n"},
	}
	for _, tt := range tests {
		r := m.Host(tt.argv...)
		if r.Code != tt.code || !strings.HasSuffix(r.Stderr, tt.stderr) || !strings.HasPrefix(r.Stderr, "usage: qvm-run") {
			t.Errorf("%q: %v, want exit %d and stderr ending %q", tt.argv, r, tt.code, tt.stderr)
		}
	}
	// dom0 has no qubes.VMShell: the lookup fails like a missing service.
	if r := m.Host("qvm-run", "-p", "dom0", "true"); r.Code != 127 {
		t.Errorf("qvm-run dom0: %v, want 127", r)
	}
}

func TestRuntimeQvmStartShutdown(t *testing.T) {
	m := simtest.New(t)
	m.StandaloneVM("sa")
	if r := m.Host("qvm-start", "sa"); r.Code != 0 {
		t.Fatalf("qvm-start: %v", r)
	}
	if r := m.Host("qvm-start", "sa"); r.Code != 1 || r.Stderr != "qvm-start: error: domain sa is already running\n" {
		t.Errorf("second qvm-start: %v", r)
	}
	if r := m.Host("qvm-start", "--skip-if-running", "sa"); r.Code != 0 {
		t.Errorf("qvm-start --skip-if-running: %v", r)
	}
	if r := m.Host("qvm-start", "nope"); r.Code != 2 || !strings.Contains(r.Stderr, "no such domain: 'nope'") {
		t.Errorf("qvm-start nope: %v", r)
	}
	if r := m.Host("qvm-pause", "sa"); r.Code != 0 {
		t.Fatalf("qvm-pause: %v", r)
	}
	if r := m.Host("qvm-check", "--paused", "sa"); r.Code != 0 {
		t.Errorf("qvm-check --paused after qvm-pause: %v", r)
	}
	// qvm-run unpauses, as it starts a halted VM.
	if r := m.Host("qvm-run", "-p", "sa", "echo ok"); r.Code != 0 || r.Stdout != "ok\n" {
		t.Errorf("qvm-run on a paused VM: %v", r)
	}
	if r := m.Host("qvm-shutdown", "--wait", "sa"); r.Code != 0 {
		t.Fatalf("qvm-shutdown --wait: %v", r)
	}
	if m.Running("sa") {
		t.Fatal("running after qvm-shutdown --wait")
	}
	// Shutting down a halted VM is not an error.
	if r := m.Host("qvm-shutdown", "sa"); r.Code != 0 || r.Stderr != "" {
		t.Errorf("qvm-shutdown of a halted VM: %v", r)
	}
	if r := m.Host("qvm-start", "sa"); r.Code != 0 {
		t.Fatalf("restart: %v", r)
	}
	if r := m.Host("qvm-shutdown", "--all", "--wait"); r.Code != 0 || m.Running("sa") {
		t.Fatalf("qvm-shutdown --all --wait: %v", r)
	}
}

func TestRuntimeInvocationLog(t *testing.T) {
	m := simtest.New(t)
	m.StandaloneVM("sa")
	m.MustRun("qvm-start", "sa")
	before := m.CountSpawns("sa")
	m.MustRun("qvm-run", "-p", "sa", "true")
	if n := m.CountSpawns("sa") - before; n != 1 {
		t.Errorf("qvm-run -p sa true spawned %d processes in sa, want 1", n)
	}
	if n := m.CountTool("qvm-run"); n != 1 {
		t.Errorf("%d qvm-run invocations recorded, want 1", n)
	}
	var found bool
	for _, inv := range m.Invocations() {
		if inv.Kind == "spawn" && inv.Domain == "sa" && bytes.Contains([]byte(strings.Join(inv.Argv, " ")), []byte("bash -c true")) {
			found = true
		}
	}
	if !found {
		t.Errorf("no spawn record of bash -c true in sa: %+v", m.Invocations())
	}
}

// A reader that goes away gives the remote writer EPIPE: it dies of SIGPIPE
// (default disposition in the domain) and qvm-run passes 128+13 on.
func TestRuntimeQvmRunClosedStdout(t *testing.T) {
	m := simtest.New(t)
	m.StandaloneVM("sa")
	r := m.Host("bash", "-c", `qvm-run -p sa 'yes' | head -n1; echo "${PIPESTATUS[0]}"`)
	if r.Stdout != "y\n141\n" {
		t.Fatalf("qvm-run status with a closed stdout: %v, want 141", r)
	}
	if r := m.Host("qvm-run", "-p", "sa", "grep SigIgn /proc/self/status"); r.Stdout != "SigIgn:\t0000000000000000\n" {
		t.Errorf("domain processes start with ignored signals: %v", r)
	}
}
