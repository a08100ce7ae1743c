// Package forge is a small client for the parts of the Gitea and Forgejo
// REST API (/api/v1) that octavo uses: commit statuses, webhooks, repository
// metadata and branches. Both forges respond to these calls the same way, so
// one client serves both, and the kind only picks the webhook type.
//
// Every call goes through one request helper that takes a context, sends
// JSON, authenticates with an "Authorization: token" header and turns any
// response outside 2xx into an [*Error]. The token is sent only in that header:
// it never appears in a URL, an error, a log line or a process list.
package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Forge kinds accepted by [New].
const (
	KindGitea   = "gitea"
	KindForgejo = "forgejo"
)

// defaultTimeout bounds one request when [New] gets no http.Client. It is
// far longer than a healthy forge takes to respond to these small calls,
// and short enough that a hung forge does not stall the status sender long.
const defaultTimeout = 30 * time.Second

// maxResponseBytes bounds how much of a successful response is read and
// decoded. The largest responses are pages of 50 branches or hooks, well
// under 1 MiB.
const maxResponseBytes = 8 << 20

// Token is a forge API token. Its String, GoString and LogValue methods
// return a redacted text, so printing or logging a Token by mistake shows no
// secret.
type Token string

// redacted replaces a secret in anything printed or logged.
const redacted = "[REDACTED]"

// String returns a redacted text, never the token.
func (Token) String() string { return redacted }

// GoString returns a redacted text for %#v, never the token.
func (Token) GoString() string { return redacted }

// LogValue implements [slog.LogValuer] with a redacted value.
func (Token) LogValue() slog.Value { return slog.StringValue(redacted) }

// Client calls one forge's API. It is safe for concurrent use. Create it with
// [New].
type Client struct {
	base    *url.URL // ends in "/api/v1/"
	baseErr error    // set when the base URL given to New is unusable
	token   Token
	kind    string
	hc      *http.Client
}

// New returns a client for the forge at baseURL, such as
// "https://git.example.com" or "https://example.com/gitea/" (with or without
// the trailing slash); the forge's API URL, ending in /api/v1, is accepted
// too. kind is [KindGitea] or [KindForgejo]; an empty kind
// means Gitea. token may be empty for anonymous calls. hc nil means an
// http.Client with a 30 s timeout.
//
// New does not fail: an unusable baseURL or kind makes every call return an
// error that names the value and the fix.
func New(baseURL, token, kind string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: defaultTimeout}
	}
	if kind == "" {
		kind = KindGitea
	}
	c := &Client{token: Token(token), kind: kind, hc: hc}

	base, err := parseBaseURL(baseURL)
	if err != nil {
		c.baseErr = err
		return c
	}
	if kind != KindGitea && kind != KindForgejo {
		c.baseErr = fmt.Errorf("forge kind %q is not supported: use %q or %q", kind, KindGitea, KindForgejo)
		return c
	}
	c.base = base
	return c
}

// parseBaseURL checks the forge URL and returns its API root.
func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("invalid forge URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid forge URL %q: want an http:// or https:// URL such as https://git.example.com/", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid forge URL %q: no host", raw)
	}
	if u.User != nil {
		// Credentials in the URL would end up in error messages and logs.
		return nil, fmt.Errorf("invalid forge URL %s: remove the user name and password and pass the token as a setting", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("invalid forge URL %q: remove the query and fragment", raw)
	}
	// Accept the API URL too, as people copy it from the forge's API docs.
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/api/v1") + "/api/v1/"
	u.RawPath = ""
	return u, nil
}

// String describes the client without its token. It exists because fmt
// prints an unexported field such as the token raw, bypassing
// [Token.String].
func (c Client) String() string {
	if c.base == nil {
		return "forge client (" + c.kind + ", unusable URL)"
	}
	return "forge client (" + c.kind + ") for " + c.base.Redacted()
}

// GoString is [Client.String], for %#v.
func (c Client) GoString() string { return c.String() }

// LogValue implements [slog.LogValuer] with [Client.String].
func (c Client) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Kind returns the forge kind the client was created for.
func (c *Client) Kind() string { return c.kind }

// do sends one API request and decodes a 2xx response into out (unless out is
// nil). path is relative to /api/v1 and already escaped; body, when not
// nil, is sent as JSON. Any failure is an [*Error]. do returns the response
// headers for callers that page.
func (c *Client) do(ctx context.Context, method, path string, body, out any) (http.Header, error) {
	return c.doHiding(ctx, method, path, body, out, nil)
}

// doHiding is [Client.do] that also removes each of hide (besides the
// token) from the error, for requests that carry a webhook secret.
func (c *Client) doHiding(ctx context.Context, method, path string, body, out any, hide []Secret) (http.Header, error) {
	hidden := c.hidden(hide)
	fail := func(code int, respBody []byte, err error) error {
		return &Error{
			Method:     method,
			Path:       "/api/v1/" + path,
			StatusCode: code,
			// Redact before cutting, so a cut cannot leave part of a secret.
			Body: truncateBody([]byte(redact(string(respBody), hidden))),
			Err:  scrubErr(err, hidden),
		}
	}
	if c.baseErr != nil {
		return nil, fail(0, nil, c.baseErr)
	}

	var reqBody io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			return nil, fail(0, nil, fmt.Errorf("encode request body: %w", err))
		}
		reqBody = bytes.NewReader(buf)
	}

	ref, err := url.Parse(path)
	if err != nil {
		return nil, fail(0, nil, fmt.Errorf("build request URL: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.ResolveReference(ref).String(), reqBody)
	if err != nil {
		return nil, fail(0, nil, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "token "+string(c.token))
	}

	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fail(0, nil, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Read past what the error keeps, so a secret that starts inside
		// the kept part is read whole and redacted before the cut.
		data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+maxSecretRead))
		return resp.Header, fail(resp.StatusCode, data, readErr)
	}

	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return resp.Header, fail(resp.StatusCode, data, fmt.Errorf("read response body: %w", err))
	}
	if len(data) > maxResponseBytes {
		return resp.Header, fail(resp.StatusCode, nil, fmt.Errorf("response body larger than %d bytes", maxResponseBytes))
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return resp.Header, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return resp.Header, fail(resp.StatusCode, data, fmt.Errorf("decode response body: %w", err))
	}
	return resp.Header, nil
}

// maxSecretRead is how far past maxErrorBody an error response is read.
// It is far longer than a forge token (40 characters) or a generated
// webhook secret; a secret longer than 4 KiB could still be cut unredacted.
const maxSecretRead = 4096

// minSecretLen is the shortest token or secret that errors are scrubbed
// of. Replacing a shorter one would mangle ordinary text; forge tokens are
// 40 characters.
const minSecretLen = 4

// hidden returns the texts to remove from errors: the token and each of
// extra, both as they are and as JSON escapes them, because a forge that
// echoes the request body echoes the JSON form.
func (c *Client) hidden(extra []Secret) []string {
	var out []string
	for _, s := range append([]string{string(c.token)}, secretStrings(extra)...) {
		if len(s) < minSecretLen {
			continue
		}
		out = append(out, s)
		if encoded, err := json.Marshal(s); err == nil {
			if e := strings.Trim(string(encoded), `"`); e != s {
				out = append(out, e)
			}
		}
	}
	return out
}

func secretStrings(secrets []Secret) []string {
	out := make([]string, 0, len(secrets))
	for _, s := range secrets {
		out = append(out, string(s))
	}
	return out
}

// redact replaces each of hidden in s.
func redact(s string, hidden []string) string {
	for _, h := range hidden {
		s = strings.ReplaceAll(s, h, redacted)
	}
	return s
}

// scrubErr returns err, or a copy whose text has each of hidden removed
// when the text contains one: a transport error repeats the request URL,
// and a redirect from a misbehaving forge or proxy can put the token there.
func scrubErr(err error, hidden []string) error {
	if err == nil {
		return nil
	}
	msg := redact(err.Error(), hidden)
	if msg == err.Error() {
		return err
	}
	return &scrubbedError{msg: msg, cause: err}
}

// scrubbedError is an error whose text is redacted. Unwrap still returns
// the original, so errors.Is matches context.DeadlineExceeded and the like.
// NOTE: printing the unwrapped cause would show the token again.
type scrubbedError struct {
	msg   string
	cause error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.cause }

// repoPath returns "repos/OWNER/NAME/" with both parts escaped, or an error
// when fullName is not of the form OWNER/NAME.
func repoPath(fullName string) (string, error) {
	owner, name, err := SplitFullName(fullName)
	if err != nil {
		return "", err
	}
	return "repos/" + url.PathEscape(owner) + "/" + url.PathEscape(name) + "/", nil
}

// SplitFullName splits "OWNER/NAME" into its two parts. It returns an error
// wrapping [ErrInvalidRepo] for anything else.
func SplitFullName(fullName string) (owner, name string, err error) {
	owner, name, ok := strings.Cut(fullName, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("%w: %q (want OWNER/NAME)", ErrInvalidRepo, fullName)
	}
	return owner, name, nil
}
