package webadmin_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromium finds Debian's chromium ($CHROMIUM overrides). Without it the
// browser test skips on a developer machine and fails in CI, which installs
// it (.ci/deps).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; CI must have it (.ci/deps installs Debian's chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium); the browser test needs it")
	return ""
}

// artifacts is where screenshots go: $TEST_ARTIFACTS, else the repo's
// dist/test-artifacts (gitignored).
func artifacts(t *testing.T) string {
	dir := os.Getenv("TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(repoRoot, "dist", "test-artifacts")
	}
	dir = filepath.Join(dir, "webadmin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBrowser runs the panel in headless Chromium over a simulated machine:
// live state, the live audit log, revoke through its confirmation, and that
// the page requests nothing but its own origin.
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	p := newSimPanel(t)
	out := artifacts(t)

	// Debian's chromium as root in a container: no sandbox, nothing that
	// phones home (the network is closed; such requests would only fail).
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancelC := chromedp.NewContext(actx)
	defer cancelC()
	// The first Run starts the browser and binds it to ctx: steps below run
	// under shorter contexts derived from it, which must not own it.
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}

	// Every request the page makes, to check none leaves the panel.
	var mu sync.Mutex
	var requests []string
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			requests = append(requests, e.Request.URL)
			mu.Unlock()
		}
	})

	// run bounds each step, so a step that cannot happen fails with its
	// own message instead of the test's deadline.
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Run(sctx, actions...); err != nil {
			var png []byte
			var loc string
			chromedp.Run(ctx, chromedp.Location(&loc), chromedp.CaptureScreenshot(&png))
			os.WriteFile(filepath.Join(out, "failure.png"), png, 0o644)
			t.Fatalf("%s: %v (page %s, screenshot failure.png)\n%s", what, err, loc, p.journal())
		}
	}
	shot := func(name string, w, h int64) {
		t.Helper()
		var png []byte
		if err := chromedp.Run(ctx,
			chromedp.EmulateViewport(w, h),
			chromedp.Evaluate(`window.scrollTo(0, 0)`, nil),
			chromedp.Sleep(300*time.Millisecond), // one layout pass after the resize
			chromedp.CaptureScreenshot(&png),
		); err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(out, name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", path)
	}
	// waitText is a bounded wait for sel's text to contain want.
	waitText := func(sel, want string, bound time.Duration) {
		t.Helper()
		deadline := time.Now().Add(bound)
		var text string
		for {
			err := chromedp.Run(ctx, chromedp.Evaluate(fmt.Sprintf(
				`(document.querySelector(%q) || {innerText: ""}).innerText`, sel), &text))
			if err != nil {
				t.Fatalf("read %s: %v", sel, err)
			}
			if strings.Contains(text, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %v, %s shows %q, want %q\n%s", bound, sel, text, want, p.journal())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	run("open the panel", network.Enable(), chromedp.Navigate(p.url+"/"))
	waitText("#remote", "running", 20*time.Second)
	waitText("#remote", "transient", 5*time.Second)
	waitText("#agent", "running", 20*time.Second)
	waitText("#agent", "openclaw-server", 5*time.Second)
	if p.tunnel {
		waitText(`[data-tunnel="gateway"]`, "up", 20*time.Second)
		waitText(`[data-tunnel="llm-proxy"]`, "up", 20*time.Second)
		waitText("#proxy", "provider openai", 20*time.Second)
		waitText("#proxy", "healthy", time.Second)
	}

	// A command run in the VM shows in the live log without a reload.
	var before string
	chromedp.Run(ctx, chromedp.Evaluate(`performance.getEntriesByType("navigation").length + ":" + performance.timeOrigin`, &before))
	if r := p.m.VM("work", "qvm-remote 'echo from-the-browser-test; exit 3'"); r.Code != 3 {
		t.Fatalf("qvm-remote: %v", r)
	}
	// The command has ended, so its lines are in the daemon's log now: the
	// page must show them within 2 s.
	waitText("#lines", "DONE-FAIL", 2*time.Second)
	waitText("#lines", "from-the-browser-test", 100*time.Millisecond)
	waitText("#history", "from-the-browser-test", 5*time.Second)
	var after string
	chromedp.Run(ctx, chromedp.Evaluate(`performance.getEntriesByType("navigation").length + ":" + performance.timeOrigin`, &after))
	if before != after {
		t.Errorf("the page reloaded (%s → %s)", before, after)
	}
	// The filter hides lines that do not match.
	var shown int
	run("filter the log",
		chromedp.SendKeys("#filter", "done-fail"),
		chromedp.Evaluate(`[...document.querySelectorAll("#lines li")].filter(li => !li.hidden).length`, &shown),
	)
	var total int
	chromedp.Run(ctx, chromedp.Evaluate(`document.querySelectorAll("#lines li").length`, &total))
	if shown < 1 || shown >= total {
		t.Errorf("filter done-fail: %d of %d lines shown", shown, total)
	}
	var catColour string
	chromedp.Run(ctx, chromedp.Evaluate(`getComputedStyle(document.querySelector("#lines li:not([hidden]) .cat")).color`, &catColour))
	if catColour == "" || catColour == "rgb(214, 219, 230)" { // the log's plain text colour
		t.Errorf("DONE-FAIL is not coloured: %q", catColour)
	}
	run("clear the filter", chromedp.Evaluate(`(f => { f.value = ""; f.dispatchEvent(new Event("input")); f.blur(); })(document.getElementById("filter"))`, nil))

	shot("overview-1280x800", 1280, 800)
	shot("overview-1024x640", 1024, 640)

	// Stop the tunnel's VM: the page shows it down, without a reload.
	if r := p.m.Host("qvm-shutdown", "--wait", "agent"); r.Code != 0 {
		t.Fatalf("qvm-shutdown: %v", r)
	}
	waitText("#agent", "halted", 10*time.Second)
	if p.tunnel {
		waitText(`[data-tunnel="gateway"]`, "down", 10*time.Second)
		waitText(`[data-tunnel="llm-proxy"]`, "VM halted", 10*time.Second)
		waitText("#proxy", "down", 10*time.Second)
	}
	shot("agent-down-1280x800", 1280, 800)

	// Revoke through the confirmation: a wrong name changes nothing.
	// The overview is re-rendered every refresh, so the link is followed
	// in one script step rather than found and then clicked.
	run("open the revoke confirmation",
		chromedp.EmulateViewport(1280, 800),
		chromedp.Evaluate(`document.querySelector('#remote tr[data-vm="work"] a.danger').click()`, nil),
		chromedp.WaitVisible("#confirm-name"),
	)
	run("revoke with a mistyped name",
		chromedp.SendKeys("#confirm-name", "wrok"),
		chromedp.Click("#revoke-confirm"),
		chromedp.WaitVisible(".banner.bad"),
	)
	if out := p.m.Dom0("qvm-remote-dom0 keys").Stdout; !strings.Contains(out, "work") {
		t.Fatalf("a mistyped confirmation revoked the key: %q", out)
	}
	shot("revoke-confirm-1024x640", 1024, 640)
	run("revoke",
		chromedp.EmulateViewport(1280, 800),
		chromedp.Evaluate(`document.getElementById("confirm-name").value = ""`, nil),
		chromedp.SendKeys("#confirm-name", "work"),
		chromedp.Click("#revoke-confirm"),
		chromedp.WaitVisible(".banner.ok"),
	)
	waitText(".banner.ok", "revoked", time.Second)
	waitText("#remote", "No VM is authorized", 5*time.Second)
	if out := p.m.Dom0("qvm-remote-dom0 keys").Stdout; strings.Contains(out, "work") {
		t.Errorf("revoked, but qvm-remote-dom0 keys still lists work: %q", out)
	}
	if r := p.m.VM("work", "qvm-remote true"); r.Code == 0 {
		t.Errorf("the revoked VM still runs commands: %v", r)
	}
	waitText("#lines", "AUTH-FAIL", 5*time.Second)
	shot("after-revoke-1280x800", 1280, 800)

	// Nothing the page loaded came from anywhere but the panel.
	mu.Lock()
	defer mu.Unlock()
	if len(requests) < 4 {
		t.Fatalf("only %d requests seen: %q", len(requests), requests)
	}
	for _, r := range requests {
		u, err := url.Parse(r)
		if err != nil || u.Scheme != "http" || u.Host != strings.TrimPrefix(p.url, "http://") {
			t.Errorf("request outside the panel: %s", r)
		}
	}
}
