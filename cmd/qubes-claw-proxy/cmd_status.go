package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/qubes-claw/qubes-claw/pkg/cli"
	"github.com/qubes-claw/qubes-claw/pkg/vmsetup"
)

// StatusOptions are the status command's inputs.
type StatusOptions struct {
	g   *globals
	Out io.Writer
	// JSON prints the report as one JSON object.
	JSON bool
	// Errors is how many recent errors to show.
	Errors int
	// Timeout bounds the /health request.
	Timeout time.Duration
	run     runner
}

func newStatusCmd(g *globals, runF func(context.Context, *StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{g: g, run: g.run}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the proxy and gateway services, the provider, /health and the last errors",
		Long: `status reports, for the user in setup.user:

  - both user units (qubes-claw-proxy.service, qubes-claw-gateway.service):
    their state from "systemctl --user show" (as root, through --machine
    USER@), whether they are enabled, and their Qubes service flag;
  - the provider (and fallbacks) and the listen address of the configuration;
  - the answer of GET /health on that address;
  - the last errors: when usage_log is set, the usage log's requests that
    failed (status 400 and above, or an error); otherwise the proxy unit's
    journal (journalctl --user -u qubes-claw-proxy.service; as root
    --user-unit): warning and error
    lines, and chat completions logged with a status of 400 and above.

--json prints the same as one JSON object.` + exitStatusHelp + `
  3    not healthy: the proxy unit is not active or /health did not answer 200`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("status takes no arguments")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Out = cmd.OutOrStdout()
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runStatus(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the report as JSON")
	cmd.Flags().IntVarP(&opts.Errors, "errors", "n", 5, "how many recent errors to show")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 3*time.Second, "bound of the /health request")
	return cmd
}

// StatusReport is what status prints.
type StatusReport struct {
	Provider string          `json:"provider"`
	Fallback []string        `json:"fallback,omitempty"`
	Listen   string          `json:"listen"`
	Services []ServiceStatus `json:"services"`
	Health   HealthStatus    `json:"health"`
	// ErrorsFrom names where Errors were read: "usage_log PATH" or
	// "journal UNIT".
	ErrorsFrom string   `json:"errors_from"`
	Errors     []string `json:"errors"`
	// ErrorsUnavailable says why no errors could be read.
	ErrorsUnavailable string `json:"errors_unavailable,omitempty"`
}

// ServiceStatus is one user unit.
type ServiceStatus struct {
	Unit            string `json:"unit"`
	Flag            string `json:"flag"`
	FlagOn          bool   `json:"flag_on"`
	ActiveState     string `json:"active_state"`
	SubState        string `json:"sub_state,omitempty"`
	Result          string `json:"result,omitempty"`
	UnitFileState   string `json:"unit_file_state,omitempty"`
	ConditionResult string `json:"condition_result,omitempty"`
	MainPID         int    `json:"main_pid,omitempty"`
	NRestarts       int    `json:"restarts"`
	StatusText      string `json:"status_text,omitempty"`
	// Error is set when the user manager could not be asked.
	Error string `json:"error,omitempty"`
}

// HealthStatus is the answer of GET /health.
type HealthStatus struct {
	URL           string `json:"url"`
	OK            bool   `json:"ok"`
	HTTPStatus    int    `json:"http_status,omitempty"`
	Status        string `json:"status,omitempty"`
	Provider      string `json:"provider,omitempty"`
	Authenticated *bool  `json:"authenticated,omitempty"`
	Version       string `json:"proxy_version,omitempty"`
	Error         string `json:"error,omitempty"`
}

// statusProps are the unit properties status reads.
const statusProps = "ActiveState,SubState,Result,UnitFileState,ConditionResult,MainPID,NRestarts,StatusText"

func runStatus(ctx context.Context, opts *StatusOptions) error {
	cfg, _, err := opts.g.load()
	if err != nil {
		return err
	}
	sc := cfg.Setup
	rep := StatusReport{Provider: cfg.Provider, Fallback: cfg.Fallback, Listen: cfg.Listen, Errors: []string{}}
	ctl := userSystemctl(sc.User)
	for _, unit := range vmsetup.Units {
		svc := strings.TrimSuffix(unit, ".service")
		s := ServiceStatus{Unit: unit, Flag: svc, FlagOn: flagOn(sc, svc)}
		out, err := opts.run(ctx, append(append([]string{}, ctl...), "show", "-p", statusProps, unit)...)
		if err != nil {
			s.ActiveState, s.Error = "unknown", err.Error()
		} else {
			p := parseShow(out)
			s.ActiveState, s.SubState, s.Result = p["ActiveState"], p["SubState"], p["Result"]
			s.UnitFileState, s.ConditionResult, s.StatusText = p["UnitFileState"], p["ConditionResult"], p["StatusText"]
			s.MainPID, _ = strconv.Atoi(p["MainPID"])
			s.NRestarts, _ = strconv.Atoi(p["NRestarts"])
		}
		rep.Services = append(rep.Services, s)
	}
	rep.Health = checkHealth(ctx, cfg.Listen, opts.Timeout)
	if cfg.UsageLog != "" {
		rep.ErrorsFrom = "usage_log " + string(cfg.UsageLog)
		errs, err := usageLogErrors(string(cfg.UsageLog), opts.Errors)
		if err != nil {
			rep.ErrorsUnavailable = err.Error()
		} else {
			rep.Errors = errs
		}
	} else {
		rep.ErrorsFrom = "journal " + vmsetup.ProxyUnit
		// As the user, its own journal; as root, the user unit's lines in
		// every journal (--user-unit matches _SYSTEMD_USER_UNIT).
		jctl := []string{"journalctl", "--user", "-u", vmsetup.ProxyUnit}
		if len(ctl) > 2 {
			jctl = []string{"journalctl", "--user-unit", vmsetup.ProxyUnit}
		}
		out, err := opts.run(ctx, append(jctl, "-n", "1000", "-o", "cat", "--no-pager")...)
		if err != nil {
			rep.ErrorsUnavailable = err.Error()
		} else {
			rep.Errors = journalErrors(out, opts.Errors)
		}
	}

	if opts.JSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintf(opts.Out, "%s\n", b)
	} else {
		printStatus(opts.Out, rep)
	}
	if rep.Services[0].ActiveState != "active" || !rep.Health.OK {
		return cli.Status(3)
	}
	return nil
}

// parseShow reads systemctl show's KEY=VALUE lines.
func parseShow(out string) map[string]string {
	p := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			p[k] = v
		}
	}
	return p
}

// checkHealth asks GET /health on the listen address (a wildcard address
// is asked on loopback).
func checkHealth(ctx context.Context, listen string, timeout time.Duration) HealthStatus {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return HealthStatus{Error: err.Error()}
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	h := HealthStatus{URL: "http://" + net.JoinHostPort(host, port) + "/health"}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		h.Error = err.Error()
		return h
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.Error = err.Error()
		return h
	}
	defer resp.Body.Close()
	h.HTTPStatus = resp.StatusCode
	var body struct {
		Status        string `json:"status"`
		Provider      string `json:"provider"`
		Authenticated *bool  `json:"authenticated"`
		Version       string `json:"proxy_version"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		h.Error = "not a /health answer: " + err.Error()
		return h
	}
	h.Status, h.Provider, h.Authenticated, h.Version = body.Status, body.Provider, body.Authenticated, body.Version
	h.OK = resp.StatusCode == http.StatusOK
	if !h.OK {
		h.Error = resp.Status
	}
	return h
}

// usageLogErrors returns the last n failed requests of the usage log, one
// line each, oldest first.
func usageLogErrors(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var errs []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec struct {
			Time     string `json:"time"`
			Provider string `json:"provider"`
			Model    string `json:"model"`
			Status   int    `json:"status"`
			Error    string `json:"error"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Status < 400 && rec.Error == "" {
			continue
		}
		line := fmt.Sprintf("%s %s %s: %d", rec.Time, rec.Provider, rec.Model, rec.Status)
		if rec.Error != "" {
			line += " " + rec.Error
		}
		errs = keepLast(append(errs, line), n)
	}
	return errs, sc.Err()
}

var (
	journalLevel  = regexp.MustCompile(`(^|\s)level=(warning|error|fatal|panic)(\s|$)|"level":"(warning|error|fatal|panic)"`)
	journalStatus = regexp.MustCompile(`(^|\s)status=[45][0-9][0-9](\s|$)|"status":[45][0-9][0-9][,}]`)
)

// journalErrors returns the last n warning or error lines of the proxy's
// journal, and its chat completions that failed.
func journalErrors(out string, n int) []string {
	errs := []string{}
	for _, line := range strings.Split(out, "\n") {
		if journalLevel.MatchString(line) || journalStatus.MatchString(line) {
			errs = keepLast(append(errs, strings.TrimSpace(line)), n)
		}
	}
	return errs
}

func keepLast(s []string, n int) []string {
	if n >= 0 && len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func printStatus(w io.Writer, r StatusReport) {
	prov := r.Provider
	if len(r.Fallback) > 0 {
		prov += " (fallback: " + strings.Join(r.Fallback, ", ") + ")"
	}
	fmt.Fprintf(w, "provider: %s\nlisten:   %s\n", prov, r.Listen)
	for _, s := range r.Services {
		flag := "on"
		if !s.FlagOn {
			flag = "off (qvm-service --enable VM " + s.Flag + ")"
		}
		state := s.ActiveState
		if s.SubState != "" {
			state += " (" + s.SubState + ")"
		}
		fmt.Fprintf(w, "%s: %s", s.Unit, state)
		if s.Error != "" {
			fmt.Fprintf(w, ": %s", s.Error)
		}
		if s.ConditionResult == "no" {
			fmt.Fprint(w, ", condition failed")
		}
		if s.Result != "" && s.Result != "success" {
			fmt.Fprintf(w, ", result %s", s.Result)
		}
		fmt.Fprintf(w, "; %s; flag %s; restarts %d", orDash(s.UnitFileState), flag, s.NRestarts)
		if s.MainPID > 0 {
			fmt.Fprintf(w, "; pid %d", s.MainPID)
		}
		fmt.Fprintln(w)
	}
	if r.Health.OK {
		fmt.Fprintf(w, "health:   %s (provider %s, version %s)\n", r.Health.Status, r.Health.Provider, r.Health.Version)
	} else {
		fmt.Fprintf(w, "health:   FAILED %s: %s\n", r.Health.URL, r.Health.Error)
	}
	switch {
	case r.ErrorsUnavailable != "":
		fmt.Fprintf(w, "last errors (%s): unavailable: %s\n", r.ErrorsFrom, r.ErrorsUnavailable)
	case len(r.Errors) == 0:
		fmt.Fprintf(w, "last errors (%s): none\n", r.ErrorsFrom)
	default:
		fmt.Fprintf(w, "last errors (%s):\n", r.ErrorsFrom)
		for _, e := range r.Errors {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
