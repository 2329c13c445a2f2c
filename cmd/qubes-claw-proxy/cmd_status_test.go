package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
)

// statusTools answers systemctl show per unit and journalctl with canned
// text; a unit missing from show fails as an unreachable user manager.
type statusTools struct {
	show    map[string]string
	journal string
	calls   []string
}

func (f *statusTools) run(_ context.Context, argv ...string) (string, error) {
	f.calls = append(f.calls, strings.Join(argv, " "))
	switch argv[0] {
	case "systemctl":
		unit := argv[len(argv)-1]
		if out, ok := f.show[unit]; ok {
			return out, nil
		}
		return "", &toolError{Argv: argv, Err: errors.New("exit status 1"), Stderr: "Failed to connect to bus: No medium found"}
	case "journalctl":
		return f.journal, nil
	}
	return "", errors.New("unexpected tool " + argv[0])
}

const (
	showRunning = "ActiveState=active\nSubState=running\nResult=success\nUnitFileState=enabled\nConditionResult=yes\nMainPID=4242\nNRestarts=2\nStatusText=serving provider openai\n"
	showGated   = "ActiveState=inactive\nSubState=dead\nResult=success\nUnitFileState=enabled\nConditionResult=no\nMainPID=0\nNRestarts=0\nStatusText=\n"
)

func healthServer(t *testing.T, status int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// deadAddr is a loopback address nobody listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestStatus(t *testing.T) {
	usage := `{"time":"t1","provider":"openai","model":"gpt-4o","status":200,"latency_ms":3}
{"time":"t2","provider":"openai","model":"gpt-4o","status":502,"error":"upstream: connection refused","latency_ms":3}
not json
{"time":"t3","provider":"openai","model":"gpt-4o","status":429,"error":"rate limited","latency_ms":3}
{"time":"t4","provider":"openai","model":"gpt-4o","status":200,"latency_ms":3}
`
	journal := `level=info msg=serving listen="127.0.0.1:32125" provider=openai
level=info msg="chat completion" status=200 provider=openai
level=info msg="chat completion" status=401 provider=openai model=gpt-4o
level=warning msg="health self-check failed; withholding the watchdog ping"
level=info msg=stopped
`
	tests := []struct {
		name     string
		flags    []string
		show     map[string]string
		journal  string
		usageLog string
		health   func(t *testing.T) string
		code     int
		text     []string
		check    func(t *testing.T, r StatusReport)
	}{{
		name:     "running, errors from the usage log",
		flags:    []string{"qubes-claw-proxy", "qubes-claw-gateway"},
		show:     map[string]string{"qubes-claw-proxy.service": showRunning, "qubes-claw-gateway.service": showRunning},
		usageLog: usage,
		health: func(t *testing.T) string {
			return healthServer(t, 200, `{"status":"healthy","authenticated":true,"proxy_version":"1.2.3","provider":"openai"}`)
		},
		text: []string{"provider: openai\n", "qubes-claw-proxy.service: active (running); enabled; flag on; restarts 2; pid 4242\n",
			"health:   healthy (provider openai, version 1.2.3)\n",
			"last errors (usage_log ", "  t2 openai gpt-4o: 502 upstream: connection refused\n  t3 openai gpt-4o: 429 rate limited\n"},
		check: func(t *testing.T, r StatusReport) {
			if !r.Health.OK || r.Health.Authenticated == nil || !*r.Health.Authenticated || len(r.Errors) != 2 {
				t.Errorf("report %+v", r)
			}
			for _, s := range r.Services {
				if s.ActiveState != "active" || !s.FlagOn || s.MainPID != 4242 {
					t.Errorf("service %+v", s)
				}
			}
		},
	}, {
		name:    "flags off: gated, health refused, errors from the journal",
		show:    map[string]string{"qubes-claw-proxy.service": showGated, "qubes-claw-gateway.service": showGated},
		journal: journal,
		health:  deadAddr,
		code:    3,
		text: []string{"qubes-claw-proxy.service: inactive (dead), condition failed; enabled; flag off (qvm-service --enable VM qubes-claw-proxy)",
			"health:   FAILED http://127.0.0.1:", "connection refused",
			"last errors (journal qubes-claw-proxy.service):\n  level=info msg=\"chat completion\" status=401",
			"  level=warning msg=\"health self-check failed"},
		check: func(t *testing.T, r StatusReport) {
			if r.Health.OK || len(r.Errors) != 2 || r.Services[0].ConditionResult != "no" || r.Services[1].FlagOn {
				t.Errorf("report %+v", r)
			}
		},
	}, {
		name:    "user manager unreachable, health 503",
		flags:   []string{"qubes-claw-proxy"},
		show:    map[string]string{},
		journal: "level=info msg=serving\n",
		health: func(t *testing.T) string {
			return healthServer(t, 503, `{"status":"degraded","authenticated":false,"proxy_version":"1.2.3","provider":"openai"}`)
		},
		code: 3,
		text: []string{"qubes-claw-proxy.service: unknown: systemctl --user --machine=user@ show", "No medium found",
			"health:   FAILED http://", "503 Service Unavailable", "last errors (journal qubes-claw-proxy.service): none\n"},
		check: func(t *testing.T, r StatusReport) {
			if r.Health.HTTPStatus != 503 || r.Health.Status != "degraded" || len(r.Errors) != 0 || r.Services[0].Error == "" {
				t.Errorf("report %+v", r)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := vmRoot(t, "full", tc.flags...)
			if tc.usageLog != "" {
				p := filepath.Join(root, "usage.jsonl")
				if err := os.WriteFile(p, []byte(tc.usageLog), 0o600); err != nil {
					t.Fatal(err)
				}
				t.Setenv("QCPROXY_USAGE_LOG", p)
			}
			listen := tc.health(t)
			for _, asJSON := range []bool{false, true} {
				tools := &statusTools{show: tc.show, journal: tc.journal}
				args := []string{"status", "--listen", listen}
				if asJSON {
					args = append(args, "--json")
				}
				var out, errb bytes.Buffer
				code := cli.Run(newRootCmdWith(tools.run), args, cli.Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
				if code != tc.code {
					t.Fatalf("json=%v: exit %d, want %d\n%s%s", asJSON, code, tc.code, out.String(), errb.String())
				}
				if !asJSON {
					for _, want := range tc.text {
						if !strings.Contains(out.String(), want) {
							t.Errorf("output lacks %q:\n%s", want, out.String())
						}
					}
					if !strings.Contains(out.String(), "listen:   "+listen+"\n") {
						t.Errorf("listen address missing:\n%s", out.String())
					}
					continue
				}
				var r StatusReport
				if err := json.Unmarshal(out.Bytes(), &r); err != nil {
					t.Fatalf("--json: %v\n%s", err, out.String())
				}
				if r.Provider != "openai" || r.Listen != listen || len(r.Services) != 2 || r.Services[0].Unit != "qubes-claw-proxy.service" {
					t.Errorf("report %+v", r)
				}
				tc.check(t, r)
				for _, c := range tools.calls {
					if strings.HasPrefix(c, "systemctl") && !strings.HasPrefix(c, "systemctl --user --machine=user@ show -p ") {
						t.Errorf("unexpected systemctl call %q", c)
					}
				}
			}
		})
	}
}
