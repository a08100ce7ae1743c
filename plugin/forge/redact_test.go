package forge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestTransportErrorScrubbed follows a redirect that carries the token in
// its URL to a port that refuses connections. The transport error repeats
// that URL, and the client used to return it unscrubbed.
func TestTransportErrorScrubbed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := strings.TrimPrefix(r.Header.Get("Authorization"), "token ")
		http.Redirect(w, r, "http://127.0.0.1:1/echo?auth="+auth, http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	c := New(srv.URL, testToken, KindGitea, nil)

	_, err := c.CreateStatus(t.Context(), "alice/demo", "abc123", StatusOptions{State: StatePending, Context: "octavo"})

	if err == nil {
		t.Fatal("got no error, want the refused connection")
	}
	if strings.Contains(err.Error(), testToken) {
		t.Errorf("got error text with the token: %v", err)
	}
	if !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), redacted) {
		t.Errorf("got %v, want the refused connection with the token redacted", err)
	}
	var fe *Error
	if !errors.As(err, &fe) || !fe.Temporary() {
		t.Errorf("got %#v, want a temporary *Error", err)
	}
}

// TestScrubbedErrorKeepsCause checks that a redacted transport error still
// matches its cause.
func TestScrubbedErrorKeepsCause(t *testing.T) {
	c := New("http://127.0.0.1:1", testToken, KindGitea, nil)
	cause := fmt.Errorf("get %q: %w", "http://x/?t="+testToken, context.DeadlineExceeded)

	err := c.scrubErr(cause)

	if strings.Contains(err.Error(), testToken) {
		t.Errorf("got %v, want the token redacted", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want it to match context.DeadlineExceeded", err)
	}
}

// TestClientPrintsWithoutToken prints a client with every fmt verb. The
// token field is unexported, so fmt printed it raw, bypassing
// Token.String.
func TestClientPrintsWithoutToken(t *testing.T) {
	c := New("https://git.example.com/", testToken, KindGitea, nil)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(verb, c); strings.Contains(got, testToken) {
			t.Errorf("%s: got %s, want no token", verb, got)
		}
		if got := fmt.Sprintf(verb, *c); strings.Contains(got, testToken) {
			t.Errorf("%s of the value: got %s, want no token", verb, got)
		}
	}
}
