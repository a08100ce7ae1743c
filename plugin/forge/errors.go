package forge

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// ErrNotFound is returned (inside an [*Error]) when the forge responds 404:
// the repository, organisation, hook or ref does not exist, or the token may
// not see it.
var ErrNotFound = errors.New("not found on the forge")

// ErrUnauthorized is returned (inside an [*Error]) when the forge responds 401
// or 403: the token is missing, invalid, or lacks a scope or permission.
var ErrUnauthorized = errors.New("forge rejected the token")

// ErrInvalidRepo is returned when a repository name is not of the form
// OWNER/NAME.
var ErrInvalidRepo = errors.New("invalid repository name")

// maxErrorBody is the number of bytes of an error response that an [*Error]
// keeps. Forge error responses are one short JSON object; an HTML error page from a proxy
// is cut here.
const maxErrorBody = 512

// Error is a failed forge call: a transport failure (StatusCode 0), a
// response outside 2xx, or a 2xx response that could not be read. It never
// contains the token.
//
// errors.Is(err, [ErrNotFound]) holds for a 404 and errors.Is(err,
// [ErrUnauthorized]) for a 401 or 403; errors.Is and errors.As also reach
// the transport cause (for example [context.DeadlineExceeded]).
type Error struct {
	Method     string // HTTP method
	Path       string // request path under the forge root, such as /api/v1/repos/o/r/hooks
	StatusCode int    // HTTP status code; 0 when no response arrived
	Body       string // start of the response body, at most 512 bytes, cut on a UTF-8 boundary
	Err        error  // transport or decoding cause; nil for a plain non-2xx response
}

// Error returns a one-line description with method, path, status and body.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "forge %s %s", e.Method, e.Path)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	if e.Body != "" {
		fmt.Fprintf(&b, ": %s", e.Body)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap returns the cause and the sentinel that matches the status code.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	switch e.StatusCode {
	case http.StatusNotFound:
		errs = append(errs, ErrNotFound)
	case http.StatusUnauthorized, http.StatusForbidden:
		errs = append(errs, ErrUnauthorized)
	default:
	}
	return errs
}

// Temporary reports whether repeating the same call later may succeed: a
// transport failure, a timeout, 408, 429 or any 5xx. Gitea also responds
// 500 for a commit it does not have, which retrying does not fix, but the
// status sender's capped backoff keeps such retries cheap.
func (e *Error) Temporary() bool {
	switch {
	case e.StatusCode == 0:
		return true
	case e.StatusCode == http.StatusRequestTimeout, e.StatusCode == http.StatusTooManyRequests:
		return true
	case e.StatusCode >= 500:
		return true
	default:
		return false
	}
}

// truncateBody returns at most maxErrorBody bytes of b as text, cut on a
// UTF-8 boundary, with surrounding white space removed and "…" appended when
// something was cut.
func truncateBody(b []byte) string {
	cut := len(b) > maxErrorBody
	if cut {
		b = b[:maxErrorBody]
		// Drop a partial rune the cut left at the end: at most 3 bytes.
		for i := 0; i < utf8.UTFMax-1 && len(b) > 0; i++ {
			if r, size := utf8.DecodeLastRune(b); r != utf8.RuneError || size > 1 {
				break
			}
			b = b[:len(b)-1]
		}
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
	if cut {
		s += "…"
	}
	return s
}

// ErrInvalidState is returned by [Client.CreateStatus] for a state that is
// not one of the five both forges know.
var ErrInvalidState = errors.New("invalid commit status state (want pending, success, error, failure or warning)")
