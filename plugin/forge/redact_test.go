package forge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

	err := scrubErr(cause, c.hidden(nil))

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

// TestHookErrorHidesSecret creates and edits a hook on a forge that
// rejects the request and echoes its body, as a debugging proxy does. The
// error used to carry the webhook secret, which register prints.
func TestHookErrorHidesSecret(t *testing.T) {
	secrets := []string{"plain-webhook-secret-4f1e9c", `odd<&>"\secret-8a2b`}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		http.Error(w, `{"message":"invalid hook","request":`+string(body)+`}`, http.StatusUnprocessableEntity)
	}))
	t.Cleanup(srv.Close)
	c := New(srv.URL, testToken, KindGitea, nil)

	for _, secret := range secrets {
		opts := HookOptions{URL: "https://ci.example.com/hooks", ContentType: "json", Secret: Secret(secret), Events: HookEvents, Active: true}
		calls := map[string]func() error{
			"create":     func() error { _, err := c.CreateHook(t.Context(), "alice/demo", opts); return err },
			"create org": func() error { _, err := c.CreateOrgHook(t.Context(), "team", opts); return err },
			"edit":       func() error { _, err := c.EditHook(t.Context(), "alice/demo", 7, opts); return err },
			"edit org":   func() error { _, err := c.EditOrgHook(t.Context(), "team", 7, opts); return err },
		}
		for name, call := range calls {
			err := call()
			if err == nil {
				t.Fatalf("%s: got no error, want the 422", name)
			}
			encoded, _ := json.Marshal(secret)
			for _, form := range []string{secret, strings.Trim(string(encoded), `"`)} {
				if strings.Contains(err.Error(), form) {
					t.Errorf("%s: got error with the secret: %v", name, err)
				}
			}
			if !strings.Contains(err.Error(), "422") || !strings.Contains(err.Error(), "invalid hook") {
				t.Errorf("%s: got %v, want the 422 and its message", name, err)
			}
		}
	}
}

// TestErrorBodyCutLeavesNoTokenPrefix echoes the token across the point
// where an error body is cut. The body used to be cut first and scrubbed
// after, so the start of the token stayed in the error.
func TestErrorBodyCutLeavesNoTokenPrefix(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := strings.TrimPrefix(r.Header.Get("Authorization"), "token ")
		http.Error(w, strings.Repeat("x", maxErrorBody-10)+auth, http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	c := New(srv.URL, testToken, KindGitea, nil)

	_, err := c.GetRepo(t.Context(), "alice/demo")

	if err == nil {
		t.Fatal("got no error, want the 401")
	}
	if strings.Contains(err.Error(), testToken[:10]) {
		t.Errorf("got error with the start of the token: …%s", err.Error()[len(err.Error())-40:])
	}
}
