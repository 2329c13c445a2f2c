package programs

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A confinement scenario is a shell script run as a user would, in a dom0
// shell of a fresh simulated machine ($DIR, with `qubes-sim env` applied and
// $BIN holding the built binaries). Every program it runs must write only
// inside the machine directory: that is where the simulator relocates every
// configured path (config.RootEnv), so a write anywhere else is a path that
// does not come from config.
type scenario struct {
	name   string
	script string
}

// scenarios grows with every binary: each adds the commands that make it
// write its state, logs, keys, sockets and queues.
var scenarios = []scenario{
	{name: "simulator", script: `
qvm-create --class TemplateVM --label black tpl
qvm-create --template tpl --label red app
qvm-create --class StandaloneVM --template tpl --label blue alone
qvm-prefs app memory 800
qvm-tags app add t1
qvm-features alone service.x 1
qvm-service app y on
qvm-run --pass-io app 'echo hi > ~/f; mkdir -p ~/d' </dev/null
qvm-run --pass-io --no-autostart alone true || true
mkdir -p "$DIR/domains/alone/fs/etc/qubes-rpc"
printf '#!/bin/sh\necho ok\n' > "$DIR/domains/alone/fs/etc/qubes-rpc/t.S"
chmod +x "$DIR/domains/alone/fs/etc/qubes-rpc/t.S"
printf 't.S * @tag:t1 alone allow\n' > "$DIR/domains/dom0/fs/etc/qubes/policy.d/50-t.policy"
"$BIN/qubes-sim" vm "$DIR" app -- qrexec-client-vm alone t.S
qrexec-client -d alone 'DEFAULT:QUBESRPC t.S dom0'
qvm-prefs alone autostart true
"$BIN/qubes-sim" reboot "$DIR"
qvm-shutdown --wait alone
qvm-remove -f app
`},
	{name: "installer", script: `
qvm-create --class TemplateVM --label black itpl
"$BIN/qubes-sim" install "$DIR" itpl "$BIN/qvm-remote:/usr/bin/qvm-remote:755"
qvm-create --template itpl --label red iwork
# The tunnel and the proxy's VM setup have scenarios of their own.
printf 'agent:\n  template: itpl\nclients:\n  vms: [iwork]\ntunnel:\n  enabled: false\nsetup:\n  enabled: false\n' > "$DIR/domains/dom0/fs/home/user/answers.yaml"
"$BIN/qubes-claw-install" --config /home/user/answers.yaml --dry-run
"$BIN/qubes-claw-install" --config /home/user/answers.yaml
"$BIN/qubes-claw-install" --config /home/user/answers.yaml
"$BIN/qubes-claw-install" uninstall --remove-vms --config /home/user/answers.yaml
`},
	{name: "admin panel", script: `
qvm-create --class TemplateVM --label black atpl
qvm-create --template atpl --label red awork
"$BIN/qvm-remote-dom0" authorize awork 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
"$BIN/qubes-claw-admin" --listen 127.0.0.1:0 2>"$DIR/admin.log" &
pid=$!
for i in $(seq 100); do url=$(sed -n 's/.*url="\(http[^"]*\)".*/\1/p' "$DIR/admin.log"); [ -n "$url" ] && break; sleep 0.1; done
curl -sf -c "$DIR/jar" "$url" -o "$DIR/page.html"
curl -sf "$url/api/state" -o /dev/null
curl -s --max-time 1 "$url/events" -o /dev/null || true
csrf=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$DIR/page.html" | head -1)
curl -sf -b "$DIR/jar" -d "csrf=$csrf&vm=awork&confirm=awork" "$url/action/revoke" -o /dev/null
kill $pid; wait $pid || true
`},
	{name: "tunnel", script: `
qvm-create --class TemplateVM --label black ttpl
"$BIN/qubes-sim" install "$DIR" ttpl "$BIN/qubes-claw-connect:/usr/bin/qubes-claw-connect:755"
ln -s /usr/bin/qubes-claw-connect "$DIR/domains/ttpl/fs/etc/qubes-rpc/qubes-claw.Connect"
qvm-create --template ttpl --label red tagent
qvm-tags tagent add openclaw-server
qvm-start tagent
"$BIN/qubes-claw-tunnel" policy render --write
printf 'tunnels:\n  - {name: t, listen: "127.0.0.1:0", vm: tagent, port: 32125}\n' > "$DIR/domains/dom0/fs/etc/qubes/qubes-claw-tunnel.yaml"
"$BIN/qubes-claw-tunnel" serve 2>"$DIR/tunnel.log" &
pid=$!
for i in $(seq 600); do "$BIN/qubes-claw-tunnel" status >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN/qubes-claw-tunnel" status || { cat "$DIR/tunnel.log"; kill $pid; exit 1; }
echo x | qrexec-client -d tagent 'DEFAULT:QUBESRPC qubes-claw.Connect+22 dom0' || true
"$BIN/qubes-claw-tunnel" policy explain tagent qubes-claw.Connect+32125 tagent || true
kill $pid; wait $pid || true
`},
	{name: "proxy", script: `
qvm-create --class TemplateVM --label black ptpl
"$BIN/qubes-sim" install "$DIR" ptpl "$BIN/qubes-claw-proxy:/usr/bin/qubes-claw-proxy:755" "$BIN/qubes-claw-standin:/usr/bin/qubes-claw-standin:755"
printf '#!/bin/sh\nexec qubes-claw-standin --listen "127.0.0.1:$3"\n' > "$DIR/domains/ptpl/fs/usr/bin/openclaw"
chmod 755 "$DIR/domains/ptpl/fs/usr/bin/openclaw"
qvm-create --template ptpl --label red pagent
qvm-service --enable pagent qubes-claw-proxy
qvm-service --enable pagent qubes-claw-gateway
"$BIN/qubes-claw-standin" --listen 127.0.0.1:0 >"$DIR/standin.log" 2>&1 &
spid=$!
for i in $(seq 100); do up=$(sed -n 's/.*on \(http[^ ]*\).*/\1/p' "$DIR/standin.log"); [ -n "$up" ] && break; sleep 0.1; done
pport=$(( 20000 + RANDOM % 20000 )); gport=$(( pport + 1 ))
echo sk-standin-key-0123 | qvm-run -u root --pass-io pagent "QCPROXY_SETUP_GATEWAY_PORT=$gport QCPROXY_SETUP_GATEWAY_HEALTH=http://127.0.0.1:$gport/ qubes-claw-proxy setup --provider openai --api-key-stdin --base-url $up/openai/v1 --listen 127.0.0.1:$pport"
qvm-run --pass-io pagent "for i in \$(seq 300); do curl -sf http://127.0.0.1:$pport/health && break; sleep 0.1; done" </dev/null
qvm-run --pass-io pagent "curl -sf -H \"Authorization: Bearer \$(sed -n 's/^token: //p' ~/.config/qubes-claw/qubes-claw-proxy.yaml)\" -H 'Content-Type: application/json' -d '{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}' http://127.0.0.1:$pport/v1/chat/completions" </dev/null | grep -q 'Hello, world'
qvm-run --pass-io pagent "qubes-claw-proxy status" </dev/null
qvm-run -u root --pass-io pagent "QCPROXY_SETUP_GATEWAY_PORT=$gport QCPROXY_SETUP_GATEWAY_HEALTH=http://127.0.0.1:$gport/ qubes-claw-proxy setup --check" </dev/null
kill $spid; wait $spid || true
`},
}

// writeSyscall matches the syscalls that create or change a filesystem
// entry, as strace prints them with -y (fds decoded to their paths).
var writeSyscall = regexp.MustCompile(`^(?:\d+\s+)?(openat|open|creat|mkdir|mkdirat|rename|renameat|renameat2|unlink|unlinkat|rmdir|symlink|symlinkat|link|linkat|chmod|fchmodat|chown|fchownat|lchown|truncate|mknod|mknodat|bind)\((.*)\)\s+=\s+\d+`)

// TestProgramsWriteOnlyWhereConfigured runs each scenario under strace -f and
// fails on any successful write outside the machine directory.
func TestProgramsWriteOnlyWhereConfigured(t *testing.T) {
	if testing.Short() {
		t.Skip("E2E: needs the simulator and strace")
	}
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("strace not installed (make test installs it)")
	}
	bin := binaries(t)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			top := t.TempDir()
			dir := filepath.Join(top, "m")
			trace := filepath.Join(top, "trace")
			// The trap shuts the machine down on a failing step too: its
			// supervisors would otherwise keep strace waiting until the bound.
			script := fmt.Sprintf(`set -eu
BIN=%q; DIR=%q
trap '"$BIN/qubes-sim" shutdown "$DIR" >/dev/null 2>&1 || true' EXIT
"$BIN/qubes-sim" init "$DIR"
eval "$("$BIN/qubes-sim" env "$DIR")"
%s
"$BIN/qubes-sim" shutdown "$DIR"
`, bin, dir, sc.script)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "strace", "-f", "-qq", "-z", "-y", "-s", "4096", "-o", trace,
				"-e", "trace=openat,open,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat,rmdir,symlink,symlinkat,link,linkat,chmod,fchmodat,chown,fchownat,lchown,truncate,mknod,mknodat,bind",
				"bash", "-c", script)
			cmd.Dir = top
			// Only the machine directory is writable by configuration; HOME and
			// TMPDIR point there too, so a stray default is caught.
			cmd.Env = append(os.Environ(), "HOME="+filepath.Join(dir, "host-home"), "TMPDIR="+filepath.Join(dir, "tmp"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("scenario failed: %v\n%s", err, out)
			}
			for _, v := range outsideWrites(t, trace, top) {
				t.Errorf("write outside the machine directory: %s", v)
			}
		})
	}
}

// outsideWrites returns the trace lines that wrote outside allowed.
func outsideWrites(t *testing.T, trace, allowed string) []string {
	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var bad []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		m := writeSyscall.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		call, args := m[1], m[2]
		if (call == "open" || call == "openat") && !regexp.MustCompile(`O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND`).MatchString(args) {
			continue
		}
		for _, p := range tracePaths(call, args, allowed) {
			if !permitted(p, allowed) {
				bad = append(bad, fmt.Sprintf("%s %s", call, p))
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return bad
}

// pathArgs says, per syscall, which arguments are written paths: {dirfd, path}
// index pairs, dirfd -1 when the path is relative to the working directory.
var pathArgs = map[string][][2]int{
	"open": {{-1, 0}}, "openat": {{0, 1}}, "creat": {{-1, 0}},
	"mkdir": {{-1, 0}}, "mkdirat": {{0, 1}},
	"rename": {{-1, 0}, {-1, 1}}, "renameat": {{0, 1}, {2, 3}}, "renameat2": {{0, 1}, {2, 3}},
	"unlink": {{-1, 0}}, "unlinkat": {{0, 1}}, "rmdir": {{-1, 0}},
	"symlink": {{-1, 1}}, "symlinkat": {{1, 2}}, // the target is not written
	"link": {{-1, 1}}, "linkat": {{2, 3}},
	"chmod": {{-1, 0}}, "fchmodat": {{0, 1}}, "chown": {{-1, 0}}, "fchownat": {{0, 1}}, "lchown": {{-1, 0}},
	"truncate": {{-1, 0}}, "mknod": {{-1, 0}}, "mknodat": {{0, 1}},
}

var dirfdRe = regexp.MustCompile(`^\d+<(.*)>$`)

// tracePaths extracts the paths a syscall line writes. A path relative to
// AT_FDCWD is taken relative to the scenario's directory (the programs under
// test use absolute paths; the shell runs there).
func tracePaths(call, args, cwd string) []string {
	if call == "bind" {
		if m := regexp.MustCompile(`sun_path="([^"]*)"`).FindStringSubmatch(args); m != nil && m[1] != "" && !strings.HasPrefix(m[1], "@") {
			return []string{m[1]}
		}
		return nil
	}
	a := splitArgs(args)
	var out []string
	for _, pair := range pathArgs[call] {
		if pair[1] >= len(a) {
			continue
		}
		p, err := strconv.Unquote(a[pair[1]])
		if err != nil {
			continue
		}
		base := cwd
		if pair[0] >= 0 && pair[0] < len(a) {
			if m := dirfdRe.FindStringSubmatch(a[pair[0]]); m != nil {
				base = m[1]
			}
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		out = append(out, filepath.Clean(p))
	}
	return out
}

// splitArgs splits strace's argument list at top-level commas, keeping quoted
// strings, <decoded fd paths> and {structs} whole.
func splitArgs(s string) []string {
	var out []string
	depth, start := 0, 0
	inQ := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQ && c == '\\':
			i++
		case c == '"':
			inQ = !inQ
		case inQ:
		case c == '{' || c == '[' || c == '<' || c == '(':
			depth++
		case c == '}' || c == ']' || c == '>' || c == ')':
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

func permitted(p, allowed string) bool {
	if p == allowed || strings.HasPrefix(p, allowed+"/") {
		return true
	}
	for _, ok := range []string{"/dev/null", "/dev/tty", "/dev/pts/", "/dev/ptmx", "/proc/", "/sys/fs/cgroup/", "/run/netns/"} {
		if p == ok || strings.HasPrefix(p, ok) {
			return true
		}
	}
	return false
}

// binaries returns a directory holding the built binaries: $QUBES_CLAW_BIN_DIR
// (make sets it after make build) or a fresh go build of ./cmd/....
func binaries(t *testing.T) string {
	if d := os.Getenv("QUBES_CLAW_BIN_DIR"); d != "" {
		return d
	}
	d := t.TempDir()
	cmd := exec.Command("go", "build", "-o", d+"/", "./cmd/...")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return d
}
