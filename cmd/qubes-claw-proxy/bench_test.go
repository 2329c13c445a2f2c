package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qubes-claw/qubes-claw/pkg/bench"
	"github.com/qubes-claw/qubes-claw/pkg/llmproxy/standin"
)

// benchProxy builds this command, starts `qubes-claw-proxy serve` (the real
// binary) in front of upstream (an OpenAI-compatible base URL up to /v1) and
// returns its address, its process and the client token.
func benchProxy(b *testing.B, upstream string) (addr string, proc *os.Process) {
	b.Helper()
	dir := b.TempDir()
	bin := filepath.Join(dir, "qubes-claw-proxy")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	conf := filepath.Join(dir, "proxy.yaml")
	yaml := fmt.Sprintf("listen: %s\nprovider: openai\ntoken: bench-token\nlog:\n  level: warning\nopenai:\n  base_url: %s\n  api_key: sk-bench\n", addr, upstream)
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir, "QCPROXY_CONFIG=" + conf}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("proxy never answered /health: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr, cmd.Process
}

// chatCall posts a chat completion to url and reads the answer: the whole
// body, or with stream only up to the first data chunk (the stream's rest
// is drained afterwards, outside the returned duration).
func chatCall(client *http.Client, url, token string, stream bool) (time.Duration, error) {
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`
	if stream {
		body = `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	}
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("POST %s: %s: %s", url, resp.Status, b)
	}
	if !stream {
		b, err := io.ReadAll(resp.Body)
		d := time.Since(start)
		if err == nil && !bytes.Contains(b, []byte("Hello, world")) {
			err = fmt.Errorf("POST %s: unexpected answer %s", url, b)
		}
		return d, err
	}
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadString('\n')
		if strings.HasPrefix(line, "data: {") {
			d := time.Since(start)
			_, err = io.Copy(io.Discard, r)
			return d, err
		}
		if err != nil {
			return 0, fmt.Errorf("POST %s: no data chunk: %v", url, err)
		}
	}
}

// BenchmarkProxyAddedLatency measures what the proxy adds to a request: the
// real qubes-claw-proxy binary in front of the stand-in provider, against the
// same request sent to the stand-in directly, interleaved in one run (keep-
// alive connections on both paths). Non-streaming: the whole answer;
// streaming: the time to the first data chunk. Reported as medians and the
// added milliseconds (median through the proxy minus median direct); the
// issue's goal is ≤ 1 ms added at the median.
func BenchmarkProxyAddedLatency(b *testing.B) {
	up := httptest.NewServer(standin.New())
	defer up.Close()
	addr, _ := benchProxy(b, up.URL+"/openai/v1")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	const n = 400
	for _, stream := range []bool{false, true} {
		var got time.Duration
		timed := func(url, token string) func() error {
			return func() error {
				d, err := chatCall(client, url, token, stream)
				got = d
				return err
			}
		}
		// Compare times the whole call; for streaming the samples are the
		// first-chunk times chatCall returns, collected in the same order.
		var proxied, direct bench.Samples
		viaProxy, viaUp := timed("http://"+addr+"/v1/chat/completions", "bench-token"), timed(up.URL+"/openai/v1/chat/completions", "sk-bench")
		bench.Compare(b, n,
			func() error { err := viaProxy(); proxied = append(proxied, got); return err },
			func() error { err := viaUp(); direct = append(direct, got); return err })
		proxied, direct = proxied[1:], direct[1:] // Compare's warm-up
		name := "nonstream"
		if stream {
			name = "ttfb-stream"
		}
		bench.ReportLatency(b, name+"-proxy", proxied)
		bench.ReportLatency(b, name+"-direct", direct)
		b.ReportMetric(float64(proxied.Median()-direct.Median())/float64(time.Millisecond), name+"-added-median-ms")
		b.Logf("%s: proxy %s; direct %s", name, bench.Summary(proxied), bench.Summary(direct))
	}
}

// dripUpstream is an OpenAI-compatible upstream whose streams last: chunks
// every interval, so concurrent client streams are open at once.
func dripUpstream(chunks int, interval time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for i := 0; i < chunks; i++ {
			fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-drip\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"token %d \"},\"finish_reason\":null}]}\n\n", i)
			fl.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(interval):
			}
		}
		fmt.Fprint(w, "data: {\"id\":\"chatcmpl-drip\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	})
}

// procKB reads a "Vm...:  N kB" line of /proc/PID/status.
func procKB(pid int, field string) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}

// BenchmarkProxyPeakRSS: peak resident memory (VmHWM) of the real proxy
// process while 64 clients stream at once, three rounds of 64 concurrent
// streams of 100 chunks 10 ms apart; also its RSS idle after start.
func BenchmarkProxyPeakRSS(b *testing.B) {
	up := httptest.NewServer(dripUpstream(100, 10*time.Millisecond))
	defer up.Close()
	addr, proc := benchProxy(b, up.URL+"/v1")
	idle, err := procKB(proc.Pid, "VmRSS")
	if err != nil {
		b.Fatal(err)
	}
	const streams, rounds = 64, 3
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: streams}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds && ctx.Err() == nil; r++ {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/chat/completions",
					strings.NewReader(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
				req.Header.Set("Authorization", "Bearer bench-token")
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || !bytes.Contains(body, []byte("token 99 ")) || !bytes.Contains(body, []byte("[DONE]")) {
					errs <- fmt.Errorf("stream: %s %v: %.200s", resp.Status, err, body)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	peak, err := procKB(proc.Pid, "VmHWM")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(idle/1024, "idle-rss-MB")
	b.ReportMetric(peak/1024, "peak-rss-64-streams-MB")
	b.Logf("proxy RSS idle %.1f MB, peak under %d concurrent streams %.1f MB", idle/1024, streams, peak/1024)
}
