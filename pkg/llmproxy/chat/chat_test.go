package chat

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		h    map[string]string
		want time.Duration
	}{
		{"none", nil, 0},
		{"seconds", map[string]string{"Retry-After": "30"}, 30 * time.Second},
		{"milliseconds win", map[string]string{"Retry-After": "30", "retry-after-ms": "1500"}, 1500 * time.Millisecond},
		{"http date", map[string]string{"Retry-After": "Thu, 01 Jan 2026 12:01:00 GMT"}, time.Minute},
		{"date in the past", map[string]string{"Retry-After": "Thu, 01 Jan 2026 11:00:00 GMT"}, 0},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.h {
				h.Set(k, v)
			}
			if got := RetryAfter(h, now); got != tt.want {
				t.Errorf("RetryAfter = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestClassification(t *testing.T) {
	tests := []struct {
		err        error
		wantStatus int
		retryable  bool
	}{
		{InvalidRequest("x", "bad"), 400, false},
		{&Error{Status: 404}, 404, false},
		{&Error{Status: 401}, 401, true},
		{&Error{Status: 429}, 429, true},
		{&Error{Status: 529}, 529, true},
		{ErrIdleTimeout, 504, true},
		{errors.New("connection refused"), 502, true},
	}
	for _, tt := range tests {
		e := AsError(tt.err)
		if e.Status != tt.wantStatus || e.Retryable() != tt.retryable {
			t.Errorf("%v: status %d retryable %v, want %d %v", tt.err, e.Status, e.Retryable(), tt.wantStatus, tt.retryable)
		}
	}
	for up, want := range map[int]int{500: 502, 502: 502, 503: 503, 504: 504, 529: 529, 429: 429, 401: 401, 302: 502} {
		if got, _ := StatusFromUpstream(up); got != want {
			t.Errorf("StatusFromUpstream(%d) = %d, want %d", up, got, want)
		}
	}
}

func TestParseRequestContentForms(t *testing.T) {
	r, err := ParseRequest([]byte(`{"model":"m","stop":"END","messages":[
		{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}},{"type":"text","text":"b"}]},
		{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"c","content":"r"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Messages[0].Content.String(); got != "a\nb" {
		t.Errorf("text of parts = %q", got)
	}
	if r.Messages[1].Content.String() != "" || len(r.Stop) != 1 || r.Raw["stop"] == nil {
		t.Errorf("parsed %+v", r)
	}
	if _, err := ParseRequest([]byte(`{"model":"m","messages":[{"role":"tool","content":"x"}]}`)); err == nil {
		t.Error("a tool message without tool_call_id must be refused")
	}
	if _, err := ParseRequest([]byte(`{"model":"m","messages":[{"role":"robot","content":"x"}]}`)); err == nil {
		t.Error("an unknown role must be refused")
	}
}
