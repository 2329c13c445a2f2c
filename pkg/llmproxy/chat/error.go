package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error types, as OpenAI names them; clients (OpenClaw's failover among
// them) classify on the HTTP status first and on these second.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypePermission     = "permission_error"
	TypeNotFound       = "not_found_error"
	TypeRateLimit      = "rate_limit_error"
	TypeBilling        = "billing_error"
	TypeAPI            = "api_error"
	TypeTimeout        = "timeout_error"
	TypeOverloaded     = "overloaded_error"
	TypeConnection     = "api_connection_error"
)

// Error is a failure with the HTTP status and OpenAI error object the client
// gets. Providers return it for every upstream failure they can classify.
type Error struct {
	Status  int
	Type    string
	Code    string
	Param   string
	Message string
	// RetryAfter is sent as Retry-After when known.
	RetryAfter time.Duration
	// Err is the underlying cause, for logs only.
	Err error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%d %s: %s", e.Status, e.Type, e.Message)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Body returns the OpenAI error object {"error":{...}}.
func (e *Error) Body() []byte {
	type obj struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	}
	o := obj{Message: e.Message, Type: e.Type}
	if e.Param != "" {
		o.Param = &e.Param
	}
	if e.Code != "" {
		o.Code = &e.Code
	}
	b, _ := json.Marshal(map[string]obj{"error": o})
	return b
}

// Errorf returns an *Error.
func Errorf(status int, typ, code, format string, a ...any) *Error {
	return &Error{Status: status, Type: typ, Code: code, Message: fmt.Sprintf(format, a...)}
}

// InvalidRequest is a 400 naming the offending parameter.
func InvalidRequest(param, format string, a ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Param: param, Message: fmt.Sprintf(format, a...)}
}

// ErrIdleTimeout and ErrTotalTimeout are the causes the server cancels a
// request's context with.
var (
	ErrIdleTimeout  = errors.New("upstream idle timeout")
	ErrTotalTimeout = errors.New("request timeout")
)

// AsError classifies any error as an *Error: an *Error is returned as is,
// timeouts become 504 and everything else a 502 connection error (the proxy
// could not get an answer from upstream).
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var ne net.Error
	switch {
	case errors.Is(err, ErrIdleTimeout), errors.Is(err, ErrTotalTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return &Error{Status: http.StatusGatewayTimeout, Type: TypeTimeout, Message: "upstream timed out", Err: err}
	}
	return &Error{Status: http.StatusBadGateway, Type: TypeConnection, Message: "upstream request failed", Err: err}
}

// Retryable reports whether another provider may succeed where this one
// failed: unavailability, rate limits, timeouts and credential problems are
// the provider's; a malformed request or unknown model is the client's and
// would fail everywhere.
func (e *Error) Retryable() bool {
	switch e.Status {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return false
	}
	return e.Status >= 400
}

// StatusFromUpstream maps an upstream HTTP status to the one the client gets,
// and the OpenAI error type that goes with it. A 500 from upstream becomes
// 502: the proxy works, its upstream does not.
func StatusFromUpstream(status int) (int, string) {
	switch status {
	case 400, 409, 413, 422:
		return status, TypeInvalidRequest
	case 401:
		return status, TypeAuthentication
	case 402:
		return status, TypeBilling
	case 403:
		return status, TypePermission
	case 404:
		return status, TypeNotFound
	case 408, 504:
		return http.StatusGatewayTimeout, TypeTimeout
	case 429:
		return status, TypeRateLimit
	case 503, 529:
		return status, TypeOverloaded
	}
	// Other 5xx, and statuses an API should never answer a call with
	// (1xx, 3xx, other 4xx), are the upstream's failure.
	return http.StatusBadGateway, TypeAPI
}

// RetryAfter reads retry-after-ms or Retry-After (seconds or an HTTP date).
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("retry-after-ms"); v != "" {
		if ms, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
