package sim_test

import (
	"strings"
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/sim/simtest"
)

// handler prints what qrexec gives a service: its argv and environment.
const handler = `#!/bin/sh
echo "name=$(basename "$0") arg1=${1-unset} full=$QREXEC_SERVICE_FULL_NAME remote=$QREXEC_REMOTE_DOMAIN arg=$QREXEC_SERVICE_ARGUMENT"
cat
`

func namedHandler(name string) []byte {
	return []byte("#!/bin/sh\necho " + name + "\n")
}

func TestQrexecClient(t *testing.T) {
	m := simtest.New(t)
	m.StandaloneVM("sa")
	m.WriteFile("sa", "/etc/qubes-rpc/test.Env", []byte(handler), 0o755)
	// SERVICE+ARG is looked up in every directory before SERVICE
	// (libqrexec find_qrexec_service), /usr/local before /etc.
	m.WriteFile("sa", "/usr/local/etc/qubes-rpc/test.Pick", namedHandler("local-plain"), 0o755)
	m.WriteFile("sa", "/etc/qubes-rpc/test.Pick+1", namedHandler("etc-arg"), 0o755)
	m.WriteFile("sa", "/usr/local/etc/qubes-rpc/test.Shadow", namedHandler("local"), 0o755)
	m.WriteFile("sa", "/etc/qubes-rpc/test.Shadow", namedHandler("etc"), 0o755)
	m.WriteFile("sa", "/etc/qubes-rpc/test.NotExec", namedHandler("x"), 0o644)
	m.WriteFile("sa", "/usr/lib/qubes/real-handler", namedHandler("via-symlink"), 0o755)
	m.Symlink("sa", "/usr/lib/qubes/real-handler", "/etc/qubes-rpc/test.Link")

	// Never starts the VM: halted is 125.
	r := m.Host("qrexec-client", "-d", "sa", "DEFAULT:QUBESRPC test.Env+x dom0")
	if r.Code != 125 || !strings.Contains(r.Stderr, "qrexec.sa") {
		t.Fatalf("qrexec-client to a halted VM: %v", r)
	}
	if m.Running("sa") {
		t.Fatal("qrexec-client started the VM")
	}
	m.MustRun("qvm-start", "sa")

	tests := []struct {
		name, cmd, stdin, stdout string
		code                     int
	}{
		{"env and argument", "DEFAULT:QUBESRPC test.Env+a.b-c dom0", "in\n",
			"name=test.Env arg1=a.b-c full=test.Env+a.b-c remote=dom0 arg=a.b-c\nin\n", 0},
		{"no argument", "DEFAULT:QUBESRPC test.Env dom0", "",
			"name=test.Env arg1=unset full=test.Env+ remote=dom0 arg=\n", 0},
		{"source as given by dom0", "user:QUBESRPC test.Env+1 other", "",
			"name=test.Env arg1=1 full=test.Env+1 remote=other arg=1\n", 0},
		{"nogui prefix", "DEFAULT:nogui:QUBESRPC test.Env+2 dom0", "",
			"name=test.Env arg1=2 full=test.Env+2 remote=dom0 arg=2\n", 0},
		{"+ARG file first", "DEFAULT:QUBESRPC test.Pick+1 dom0", "", "etc-arg\n", 0},
		{"plain file otherwise", "DEFAULT:QUBESRPC test.Pick+2 dom0", "", "local-plain\n", 0},
		{"/usr/local shadows /etc", "DEFAULT:QUBESRPC test.Shadow dom0", "", "local\n", 0},
		{"symlink inside the domain", "DEFAULT:QUBESRPC test.Link dom0", "", "via-symlink\n", 0},
		{"missing service", "DEFAULT:QUBESRPC test.Missing+1 dom0", "", "", 127},
		{"not executable", "DEFAULT:QUBESRPC test.NotExec dom0", "", "", 125},
		{"bad argument", "DEFAULT:QUBESRPC test.Env+a/b dom0", "", "", 125},
		{"shell command", "user:echo $USER; exit 9", "", "user\n", 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := m.Run(simtest.Cmd{Argv: []string{"qrexec-client", "-d", "sa", tt.cmd}, Stdin: []byte(tt.stdin)})
			if r.Code != tt.code || r.Stdout != tt.stdout {
				t.Fatalf("got %v, want exit %d stdout %q", r, tt.code, tt.stdout)
			}
		})
	}
	if r := m.Host("qrexec-client", "-E", "-d", "sa", "user:exit 3"); r.Code != 0 {
		t.Errorf("-E: %v", r)
	}
	if r := m.Host("qrexec-client", "-d", "sa"); r.Code != 1 || !strings.HasPrefix(r.Stderr, "usage:") {
		t.Errorf("no command: %v", r)
	}
	// dom0 -> dom0 runs dom0's own service and needs DEFAULT:.
	m.WriteFile("dom0", "/etc/qubes-rpc/test.Dom0", []byte(handler), 0o755)
	if r := m.Host("qrexec-client", "-d", "dom0", "DEFAULT:QUBESRPC test.Dom0+z dom0"); r.Code != 0 ||
		r.Stdout != "name=test.Dom0 arg1=z full=test.Dom0+z remote=dom0 arg=z\n" {
		t.Errorf("dom0 -> dom0: %v", r)
	}
	if r := m.Host("qrexec-client", "-d", "dom0", "user:QUBESRPC test.Dom0 dom0"); r.Code != 125 {
		t.Errorf("dom0 -> dom0 without DEFAULT: %v", r)
	}
	if r := m.Host("qrexec-client", "-d", "dom0", "DEFAULT:QUBESRPC test.None dom0"); r.Code != 127 {
		t.Errorf("dom0 -> dom0 missing service: %v", r)
	}
}

func TestQrexecConnectTCP(t *testing.T) {
	m := simtest.New(t)
	m.StandaloneVM("srv")
	m.Symlink("srv", "/dev/tcp/127.0.0.1", "/etc/qubes-rpc/qubes.ConnectTCP")
	m.MustRun("qvm-start", "srv")
	port := startEchoServer(t, m, "srv")
	r := m.Run(simtest.Cmd{
		Argv:  []string{"qrexec-client", "-d", "srv", "DEFAULT:QUBESRPC qubes.ConnectTCP+" + port + " dom0"},
		Stdin: []byte("ping\n"),
	})
	// The descriptor goes first unless skip-service-descriptor=true; the
	// greeting names the host as the server sees it.
	if r.Code != 0 || !strings.Contains(r.Stdout, "\x00ping\n") || !strings.Contains(r.Stdout, "hello from ") {
		t.Fatalf("ConnectTCP: %v", r)
	}
	if !strings.Contains(r.Stdout, "echo: qubes.ConnectTCP+"+port+" dom0\x00") {
		t.Errorf("service descriptor not sent first: %q", r.Stdout)
	}
	m.WriteFile("srv", "/etc/qubes/rpc-config/qubes.ConnectTCP", []byte("skip-service-descriptor=true\nexit-on-service-eof=true\n"), 0o644)
	r = m.Run(simtest.Cmd{
		Argv:  []string{"qrexec-client", "-d", "srv", "DEFAULT:QUBESRPC qubes.ConnectTCP+" + port + " dom0"},
		Stdin: []byte("ping\n"),
	})
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "hello from ") || !strings.HasSuffix(r.Stdout, "\necho: ping\n") {
		t.Fatalf("ConnectTCP with skip-service-descriptor: %v", r)
	}
	// Nothing listens on the port: a qrexec problem.
	if r := m.Host("qrexec-client", "-d", "srv", "DEFAULT:QUBESRPC qubes.ConnectTCP+1 dom0"); r.Code != 125 {
		t.Errorf("ConnectTCP to a closed port: %v", r)
	}
	if r := m.Host("qrexec-client", "-d", "srv", "DEFAULT:QUBESRPC qubes.ConnectTCP dom0"); r.Code != 125 {
		t.Errorf("ConnectTCP without a port: %v", r)
	}
	// The Spawn API lists the tagged server and stops it.
	procs, err := m.Sim.Processes("srv")
	if err != nil || len(procs) != 1 || procs[0].Tag != "echo-server" {
		t.Fatalf("Processes: %v, %v", procs, err)
	}
}

// The acceptance scenario of the simulator: three VMs (one StandaloneVM),
// two tagged, a policy allowing @tag:a -> @tag:b for some.Service +1234 and
// denying the rest.
func TestQrexecPolicyAcceptance(t *testing.T) {
	m := simtest.New(t)
	m.Template("tpl")
	m.AppVM("client", "tpl")
	m.AppVM("other", "tpl")
	m.StandaloneVM("server")
	m.Tag("client", "a")
	m.Tag("server", "b")
	m.WriteFile("server", "/etc/qubes-rpc/some.Service", []byte(handler), 0o755)
	m.WriteFile("client", "/etc/qubes-rpc/some.Service", []byte(handler), 0o755)
	m.Policy("30-test.policy", "some.Service +1234 @tag:a @tag:b allow\nsome.Service * @anyvm @anyvm deny\n")

	r := m.VMInput("client", []byte("payload\n"), "qrexec-client-vm server some.Service+1234")
	want := "name=some.Service arg1=1234 full=some.Service+1234 remote=client arg=1234\npayload\n"
	if r.Code != 0 || r.Stdout != want {
		t.Fatalf("allowed call: %v, want stdout %q", r, want)
	}
	if !m.Running("server") {
		t.Fatal("the allowed call did not start the target")
	}
	denied := []struct{ from, cmd string }{
		{"client", "qrexec-client-vm server some.Service+99"},
		{"client", "qrexec-client-vm server some.Service"},
		{"server", "qrexec-client-vm client some.Service+1234"},
		{"other", "qrexec-client-vm server some.Service+1234"},
		{"client", "qrexec-client-vm server other.Service+1234"},
		{"client", "qrexec-client-vm nonexistent some.Service+1234"},
		// The source comes from the calling process's domain, not from
		// variables the caller controls.
		{"other", "QUBES_SIM_DOMAIN=client qrexec-client-vm server some.Service+1234"},
	}
	for _, d := range denied {
		r := m.VM(d.from, d.cmd)
		if r.Code != 126 || r.Stderr != "Request refused\n" || r.Stdout != "" {
			t.Errorf("%s: %q: %v, want 126 and Request refused", d.from, d.cmd, r)
		}
	}
	// A forged env cannot pose as another domain even where it is allowed.
	r = m.VM("client", "QUBES_SIM_DOMAIN=other qrexec-client-vm server some.Service+1234 </dev/null")
	if r.Code != 0 || !strings.Contains(r.Stdout, "remote=client ") {
		t.Errorf("call with a forged QUBES_SIM_DOMAIN: %v", r)
	}
	// dom0's tools from inside a VM, even posing as dom0, reach no other
	// domain: supervisors identify the caller by its ancestry.
	r = m.VM("other", `QUBES_SIM_DOMAIN=dom0 "$QUBES_SIM_DIR/bin/qvm-run" -p server 'echo breached'`)
	if r.Code == 0 || strings.Contains(r.Stdout, "breached") {
		t.Errorf("qvm-run from a VM posing as dom0: %v", r)
	}
	r = m.VM("other", `QUBES_SIM_DOMAIN=dom0 "$QUBES_SIM_DIR/bin/qrexec-client" -d server 'DEFAULT:QUBESRPC some.Service+1234 dom0' </dev/null`)
	if r.Code == 0 || strings.Contains(r.Stdout, "remote=") {
		t.Errorf("qrexec-client from a VM posing as dom0: %v", r)
	}
	// A file name that qrexec refuses makes every call fail.
	m.Policy("20-Bad.policy", "")
	if r := m.VM("client", "qrexec-client-vm server some.Service+1234"); r.Code != 126 {
		t.Errorf("with an invalid policy file name: %v, want 126", r)
	}
}

func TestQrexecClientVMLocalProgram(t *testing.T) {
	m := simtest.New(t)
	m.StandaloneVM("a")
	m.StandaloneVM("b")
	m.WriteFile("b", "/etc/qubes-rpc/test.Upper", []byte("#!/bin/sh\ntr a-z A-Z\nexit 4\n"), 0o755)
	m.Policy("30-test.policy", "test.Upper * a b allow\n")
	// The local program's stdout feeds the service; the service's stdout
	// feeds the local program; the status is the local program's.
	r := m.VM("a", `qrexec-client-vm b test.Upper /bin/sh -c 'echo hello; exec >&-; cat >&2; exit 6'`)
	if r.Code != 6 || r.Stderr != "HELLO\n" {
		t.Fatalf("local program: %v", r)
	}
	if r := m.VM("a", "qrexec-client-vm b test.Upper </dev/null"); r.Code != 4 {
		t.Fatalf("remote status: %v", r)
	}
	// autostart=no refuses a halted target.
	m.MustRun("qvm-shutdown", "--wait", "b")
	m.Policy("20-noauto.policy", "test.Upper * a b allow autostart=no\n")
	if r := m.VM("a", "qrexec-client-vm b test.Upper </dev/null"); r.Code != 126 || m.Running("b") {
		t.Fatalf("autostart=no to a halted target: %v", r)
	}
	// @default needs target= in the rule.
	m.Policy("10-default.policy", "test.Upper * a @default allow target=b\n")
	if r := m.VMInput("a", []byte("x"), "qrexec-client-vm @default test.Upper"); r.Code != 4 || r.Stdout != "X" {
		t.Fatalf("@default with target=: %v", r)
	}
}
