package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testToken is long and distinctive so a leak shows up in any text.
const testToken = "tok-9f8e7d6c5b4a39281706f5e4d3c2b1a0"

// recordedRequest is what the fake forge saw.
type recordedRequest struct {
	Method string
	Path   string // path and query
	Auth   string
	Body   string
}

// fakeForge serves handler and records every request.
type fakeForge struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []recordedRequest
}

func newFakeForge(t *testing.T, handler http.HandlerFunc) *fakeForge {
	t.Helper()
	f := &fakeForge{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recordedRequest{Method: r.Method, Path: r.URL.RequestURI(), Auth: r.Header.Get("Authorization"), Body: string(body)})
		f.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		handler(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeForge) requests() []recordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedRequest(nil), f.reqs...)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// checkGolden compares got with testdata/name, or rewrites the file with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file: %v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
	}
}

// indentJSON makes a request body readable in a golden file.
func indentJSON(t *testing.T, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, []byte(body), "", "  "); err != nil {
		t.Fatalf("request body is not JSON: %v: %s", err, body)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

func TestClientErrorPaths(t *testing.T) {
	longHTML := "<html>" + strings.Repeat("é gateway trouble ", 100) + "</html>"

	tests := []struct {
		name     string
		handler  http.HandlerFunc
		timeout  time.Duration // client timeout; 0 means the default
		ctxLimit time.Duration // context deadline; 0 means none
		code     int
		bodyHas  string
		notFound bool
		unauth   bool
		temp     bool
		cause    error
	}{
		{
			name: "server error keeps code and body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 500, map[string]string{"message": "GetCommit[0000]: object does not exist"})
			},
			code: 500, bodyHas: "object does not exist", temp: true,
		},
		{
			name: "missing token is unauthorized",
			handler: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 401, map[string]string{"message": "token is required"})
			},
			code: 401, bodyHas: "token is required", unauth: true,
		},
		{
			name: "missing scope is unauthorized",
			handler: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 403, map[string]string{"message": "token does not have at least one of required scope(s)"})
			},
			code: 403, bodyHas: "required scope", unauth: true,
		},
		{
			name: "unknown repository matches ErrNotFound",
			handler: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 404, map[string]string{"message": "not found"})
			},
			code: 404, bodyHas: "not found", notFound: true,
		},
		{
			name: "long error page is cut to 512 bytes",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(502)
				_, _ = io.WriteString(w, longHTML)
			},
			code: 502, bodyHas: "…", temp: true,
		},
		{
			name: "answer cut off mid-body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "1000")
				w.WriteHeader(201)
				_, _ = io.WriteString(w, `{"id": 1, "status": "pen`)
				w.(http.Flusher).Flush()
				hj, ok := w.(http.Hijacker)
				if !ok {
					panic("no hijacker")
				}
				conn, _, err := hj.Hijack()
				if err == nil {
					conn.Close()
				}
			},
			code: 201, bodyHas: `"status": "pen`, cause: io.ErrUnexpectedEOF,
		},
		{
			name: "answer that is not JSON",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(201)
				_, _ = io.WriteString(w, "<html>proxy login</html>")
			},
			code: 201, bodyHas: "proxy login",
		},
		{
			name: "slow answer hits the context deadline",
			handler: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(10 * time.Second):
				}
			},
			ctxLimit: 100 * time.Millisecond, temp: true, cause: context.DeadlineExceeded,
		},
		{
			name: "slow answer hits the client timeout",
			handler: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(10 * time.Second):
				}
			},
			timeout: 100 * time.Millisecond, temp: true,
		},
		{
			name: "error page echoing the token",
			handler: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 500, map[string]string{"message": "bad header " + r.Header.Get("Authorization")})
			},
			code: 500, bodyHas: "bad header token [REDACTED]", temp: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeForge(t, tt.handler)
			var hc *http.Client
			if tt.timeout > 0 {
				hc = &http.Client{Timeout: tt.timeout}
			}
			c := New(f.srv.URL, testToken, KindGitea, hc)
			ctx := t.Context()
			if tt.ctxLimit > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxLimit)
				defer cancel()
			}

			_, err := c.CreateStatus(ctx, "owner/repo", "abc123", StatusOptions{State: StateSuccess, Context: "octavo"})
			if err == nil {
				t.Fatal("CreateStatus returned no error")
			}

			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v is not a *forge.Error", err, err)
			}
			if fe.Method != "POST" || fe.Path != "/api/v1/repos/owner/repo/statuses/abc123" {
				t.Errorf("got method %q path %q, want POST /api/v1/repos/owner/repo/statuses/abc123", fe.Method, fe.Path)
			}
			if fe.StatusCode != tt.code {
				t.Errorf("got status code %d, want %d", fe.StatusCode, tt.code)
			}
			if !strings.Contains(fe.Body, tt.bodyHas) {
				t.Errorf("got body %q, want it to contain %q", fe.Body, tt.bodyHas)
			}
			if len(fe.Body) > maxErrorBody+len("…") {
				t.Errorf("got body of %d bytes, want at most %d", len(fe.Body), maxErrorBody+len("…"))
			}
			if got := errors.Is(err, ErrNotFound); got != tt.notFound {
				t.Errorf("got errors.Is(err, ErrNotFound) = %v, want %v", got, tt.notFound)
			}
			if got := errors.Is(err, ErrUnauthorized); got != tt.unauth {
				t.Errorf("got errors.Is(err, ErrUnauthorized) = %v, want %v", got, tt.unauth)
			}
			if got := fe.Temporary(); got != tt.temp {
				t.Errorf("got Temporary() = %v, want %v", got, tt.temp)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("got error %v, want it to wrap %v", err, tt.cause)
			}
			if strings.Contains(err.Error(), testToken) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), testToken) {
				t.Errorf("error contains the token: %v", err)
			}
		})
	}
}

func TestClientUnreachableForge(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	c := New("http://"+addr, testToken, KindGitea, nil)
	_, err = c.GetRepo(t.Context(), "owner/repo")

	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("got error %T %v, want a *forge.Error", err, err)
	}
	if fe.StatusCode != 0 || !fe.Temporary() {
		t.Errorf("got status code %d temporary %v, want 0 and true", fe.StatusCode, fe.Temporary())
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("got %v, want the transport cause in the message", err)
	}
}

func TestTokenRedacted(t *testing.T) {
	tok := Token(testToken)
	sec := Secret("webhook-secret-value")

	var logged bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logged, nil))
	log.Info("config", "token", tok, "secret", sec)

	texts := map[string]string{
		"%v":       fmt.Sprintf("%v %v", tok, sec),
		"%s":       fmt.Sprintf("%s %s", tok, sec),
		"%#v":      fmt.Sprintf("%#v %#v", tok, sec),
		"%+v":      fmt.Sprintf("%+v", struct{ T Token }{tok}),
		"slog":     logged.String(),
		"redacted": redacted,
	}
	for name, s := range texts {
		if strings.Contains(s, testToken) || strings.Contains(s, string(sec)) {
			t.Errorf("%s output contains a secret: %s", name, s)
		}
	}
	if !strings.Contains(logged.String(), redacted) {
		t.Errorf("got log line %s, want %s in it", logged.String(), redacted)
	}

	body, err := json.Marshal(hookRequestConfig{Secret: sec})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), string(sec)) {
		t.Errorf("got hook config JSON %s, want the secret sent to the forge", body)
	}
}

func TestClientBaseURL(t *testing.T) {
	tests := []struct {
		name     string
		suffix   string
		wantPath string
	}{
		{"root without slash", "", "/api/v1/repos/o/r"},
		{"root with slash", "/", "/api/v1/repos/o/r"},
		{"path prefix without slash", "/gitea", "/gitea/api/v1/repos/o/r"},
		{"path prefix with slash", "/gitea/", "/gitea/api/v1/repos/o/r"},
		// An API URL given as the forge URL used to double the API path,
		// so every call was a 404 that looked like a missing repository.
		{"API URL", "/api/v1", "/api/v1/repos/o/r"},
		{"API URL with slash and prefix", "/gitea/api/v1/", "/gitea/api/v1/repos/o/r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeForge(t, func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 200, map[string]any{"full_name": "o/r"})
			})
			c := New(f.srv.URL+tt.suffix, testToken, "", nil)

			if _, err := c.GetRepo(t.Context(), "o/r"); err != nil {
				t.Fatal(err)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			if reqs[0].Path != tt.wantPath {
				t.Errorf("got path %q, want %q", reqs[0].Path, tt.wantPath)
			}
			if reqs[0].Auth != "token "+testToken {
				t.Errorf("got Authorization %q, want the token header", reqs[0].Auth)
			}
		})
	}
}

func TestClientRejectsBadInput(t *testing.T) {
	f := newFakeForge(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 201, map[string]any{})
	})
	ok := New(f.srv.URL, testToken, KindGitea, nil)

	tests := []struct {
		name string
		call func() error
		has  string
	}{
		{"forge URL without scheme", func() error {
			_, err := New("git.example.com", testToken, KindGitea, nil).GetRepo(t.Context(), "o/r")
			return err
		}, "want an http:// or https:// URL"},
		{"forge URL with a password", func() error {
			_, err := New("http://admin:hunter2@127.0.0.1:1/", testToken, KindGitea, nil).GetRepo(t.Context(), "o/r")
			return err
		}, "remove the user name and password"},
		{"unknown forge kind", func() error {
			_, err := New(f.srv.URL, testToken, "gitlab", nil).GetRepo(t.Context(), "o/r")
			return err
		}, `forge kind "gitlab" is not supported`},
		{"repository without owner", func() error {
			_, err := ok.GetRepo(t.Context(), "justname")
			return err
		}, "want OWNER/NAME"},
		{"skipped state", func() error {
			_, err := ok.CreateStatus(t.Context(), "o/r", "abc", StatusOptions{State: "skipped"})
			return err
		}, "invalid commit status state"},
		{"upper-case state", func() error {
			_, err := ok.CreateStatus(t.Context(), "o/r", "abc", StatusOptions{State: "SUCCESS"})
			return err
		}, "invalid commit status state"},
		{"empty sha", func() error {
			_, err := ok.CreateStatus(t.Context(), "o/r", "", StatusOptions{State: StatePending})
			return err
		}, "empty commit sha"},
		{"organisation with a slash", func() error {
			_, err := ok.ListOrgHooks(t.Context(), "a/b")
			return err
		}, "want a name without slashes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil {
				t.Fatal("got no error")
			}
			if !strings.Contains(err.Error(), tt.has) {
				t.Errorf("got %v, want it to contain %q", err, tt.has)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the URL password: %v", err)
			}
		})
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("got %d requests to the forge, want none for bad input", n)
	}
}

func TestRequestBodiesGolden(t *testing.T) {
	f := newFakeForge(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case "DELETE":
			w.WriteHeader(204)
		case "POST":
			if strings.HasSuffix(r.URL.Path, "/tests") {
				w.WriteHeader(204)
				return
			}
			writeJSON(w, 201, map[string]any{"id": 7})
		default:
			writeJSON(w, 200, map[string]any{"id": 7})
		}
	})
	opts := HookOptions{
		URL: "https://ci.example.com/octavo/hooks", ContentType: "json", Secret: "golden-secret",
		Events: HookEvents, BranchFilter: "*", Active: true,
	}

	tests := []struct {
		name   string
		golden string
		call   func(c *Client) error
	}{
		{"commit status", "create-status.golden", func(c *Client) error {
			_, err := c.CreateStatus(t.Context(), "owner/repo", "0123456789abcdef0123456789abcdef01234567", StatusOptions{
				State: StateFailure, Context: "octavo", Description: "Failed: test",
				TargetURL: "https://ci.example.com/octavo/runs/12",
			})
			return err
		}},
		{"gitea repository hook", "create-hook-gitea.golden", func(c *Client) error {
			_, err := c.CreateHook(t.Context(), "owner/repo", opts)
			return err
		}},
		{"forgejo organisation hook", "create-org-hook-forgejo.golden", func(c *Client) error {
			_, err := New(f.srv.URL, testToken, KindForgejo, nil).CreateOrgHook(t.Context(), "team", opts)
			return err
		}},
		{"hook edit", "edit-hook.golden", func(c *Client) error {
			_, err := c.EditHook(t.Context(), "owner/repo", 7, opts)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.requests())
			if err := tt.call(New(f.srv.URL, testToken, KindGitea, nil)); err != nil {
				t.Fatal(err)
			}
			reqs := f.requests()[before:]
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			got := append([]byte(reqs[0].Method+" "+reqs[0].Path+"\n"), indentJSON(t, reqs[0].Body)...)
			checkGolden(t, tt.golden, got)
		})
	}
}

func TestHookCallsWithoutBody(t *testing.T) {
	f := newFakeForge(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(204)
	})
	c := New(f.srv.URL, testToken, KindGitea, nil)

	if err := c.TestHook(t.Context(), "o/r", 3); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteHook(t.Context(), "o/r", 3); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteOrgHook(t.Context(), "team", 4); err != nil {
		t.Fatal(err)
	}

	var got []string
	for _, r := range f.requests() {
		got = append(got, r.Method+" "+r.Path)
	}
	want := []string{
		"POST /api/v1/repos/o/r/hooks/3/tests",
		"DELETE /api/v1/repos/o/r/hooks/3",
		"DELETE /api/v1/orgs/team/hooks/4",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestListBranchesWalksAllPages(t *testing.T) {
	const total = 123
	f := newFakeForge(t, func(w http.ResponseWriter, r *http.Request) {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		var items []map[string]any
		for i := (page - 1) * limit; i < page*limit && i < total; i++ {
			items = append(items, map[string]any{"name": fmt.Sprintf("b%03d", i), "commit": map[string]string{"id": fmt.Sprintf("sha%03d", i)}})
		}
		w.Header().Set("X-Total-Count", strconv.Itoa(total))
		writeJSON(w, 200, items)
	})
	c := New(f.srv.URL, testToken, KindForgejo, nil)

	branches, err := c.ListBranches(t.Context(), "o/r")
	if err != nil {
		t.Fatal(err)
	}

	if len(branches) != total {
		t.Fatalf("got %d branches, want %d", len(branches), total)
	}
	if got := branches[total-1]; got != (Branch{Name: "b122", SHA: "sha122"}) {
		t.Errorf("got last branch %+v, want b122 at sha122", got)
	}
	var paths []string
	for _, r := range f.requests() {
		paths = append(paths, r.Path)
	}
	want := []string{
		"/api/v1/repos/o/r/branches?limit=50&page=1",
		"/api/v1/repos/o/r/branches?limit=50&page=2",
		"/api/v1/repos/o/r/branches?limit=50&page=3",
	}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestListHooksStopsAtTotalCount(t *testing.T) {
	f := newFakeForge(t, func(w http.ResponseWriter, r *http.Request) {
		// A forge whose total is an exact multiple of the page size.
		var items []Hook
		for i := range pageSize {
			items = append(items, Hook{ID: int64(i + 1)})
		}
		w.Header().Set("X-Total-Count", strconv.Itoa(pageSize))
		writeJSON(w, 200, items)
	})
	c := New(f.srv.URL, testToken, KindGitea, nil)

	hooks, err := c.ListHooks(t.Context(), "o/r")
	if err != nil {
		t.Fatal(err)
	}
	if len(hooks) != pageSize {
		t.Errorf("got %d hooks, want %d", len(hooks), pageSize)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("got %d requests, want 1", n)
	}
}

func TestListStopsAfterMaxPages(t *testing.T) {
	f := newFakeForge(t, func(w http.ResponseWriter, r *http.Request) {
		// A broken forge that always returns a full page and no total.
		items := make([]Hook, pageSize)
		writeJSON(w, 200, items)
	})
	c := New(f.srv.URL, testToken, KindGitea, nil)

	_, err := c.ListHooks(t.Context(), "o/r")
	if err == nil || !strings.Contains(err.Error(), "more than 200 pages") {
		t.Errorf("got %v, want the page bound error", err)
	}
	if n := len(f.requests()); n != maxPages {
		t.Errorf("got %d requests, want %d", n, maxPages)
	}
}

func TestGetRepoVisibility(t *testing.T) {
	tests := []struct {
		name       string
		json       string
		visibility string
		format     string
	}{
		{"public sha1 repository", `{"full_name":"o/r","name":"r","owner":{"login":"o"},"private":false,"internal":false,"default_branch":"main","clone_url":"http://f/o/r.git","object_format_name":"sha1"}`, VisibilityPublic, "sha1"},
		{"private repository", `{"full_name":"o/r","private":true,"internal":false,"object_format_name":"sha256"}`, VisibilityPrivate, "sha256"},
		{"internal repository", `{"full_name":"o/r","private":false,"internal":true}`, VisibilityInternal, "sha1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeForge(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, tt.json)
			})
			repo, err := New(f.srv.URL, testToken, KindGitea, nil).GetRepo(t.Context(), "o/r")
			if err != nil {
				t.Fatal(err)
			}
			if repo.Visibility != tt.visibility {
				t.Errorf("got visibility %q, want %q", repo.Visibility, tt.visibility)
			}
			if repo.ObjectFormat != tt.format {
				t.Errorf("got object format %q, want %q", repo.ObjectFormat, tt.format)
			}
			if got, want := repo.Private(), tt.visibility != VisibilityPublic; got != want {
				t.Errorf("got Private() %v, want %v", got, want)
			}
		})
	}
}

func TestCreateStatusDecodesStatusField(t *testing.T) {
	f := newFakeForge(t, func(w http.ResponseWriter, r *http.Request) {
		// Gitea returns the state under "status", as measured on 1.26.
		_, _ = io.WriteString(w, `{"id":4,"status":"warning","context":"octavo","description":"Replaced by run 9","target_url":"http://x/runs/9"}`)
	})
	st, err := New(f.srv.URL, testToken, KindGitea, nil).CreateStatus(t.Context(), "o/r", "abc", StatusOptions{State: StateWarning})
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateWarning || st.ID != 4 {
		t.Errorf("got %+v, want id 4 with state warning", st)
	}
}

func TestClientSlowAnswerWithinTimeout(t *testing.T) {
	f := newFakeForge(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond) // a slow forge, still inside the client timeout
		writeJSON(w, 201, map[string]any{"id": 1, "status": "success"})
	})
	c := New(f.srv.URL, testToken, KindGitea, &http.Client{Timeout: 5 * time.Second})

	st, err := c.CreateStatus(t.Context(), "o/r", "abc", StatusOptions{State: StateSuccess})
	if err != nil {
		t.Fatalf("got %v, want the slow response accepted", err)
	}
	if st.State != StateSuccess {
		t.Errorf("got state %q, want success", st.State)
	}
}
