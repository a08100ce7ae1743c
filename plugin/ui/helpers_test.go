package ui

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/octavo-ci/octavo/plugin/live"
	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/ui/uitest"
)

// testEnv is a status page on a real SQLite store, served over loopback.
type testEnv struct {
	srv   *httptest.Server
	ui    *UI
	store *store.Store
	hub   *live.Hub
	base  string // the server URL including the path prefix, ending in "/"
}

// newTestEnv serves the status page below prefix ("/" or "/ci/"), mounted
// the way the sidecar does it: a subrouter when subrouter is set, else a
// router behind http.StripPrefix. Each wrap, if any, wraps the handler.
func newTestEnv(t testing.TB, prefix string, subrouter bool, wrap ...func(http.Handler) http.Handler) *testEnv {
	t.Helper()
	st := uitest.OpenStore(t)
	hub := live.NewHub(nil)
	ctx, cancel := context.WithCancel(context.Background())
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		_ = hub.Run(ctx)
	}()

	// The listener comes first because the UI needs the server's URL, and
	// the handler must be complete before the server starts.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public, err := url.Parse("http://" + l.Addr().String() + prefix)
	if err != nil {
		t.Fatal(err)
	}
	u, err := New(Options{Store: st, Hub: hub, PublicURL: public, ForgeURL: &url.URL{Scheme: "https", Host: "forge.example"}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}

	root := mux.NewRouter()
	var h http.Handler = root
	switch {
	case prefix == "/":
		u.Register(root)
	case subrouter:
		u.Register(root.PathPrefix(strings.TrimSuffix(prefix, "/")).Subrouter())
	default:
		u.Register(root)
		h = http.StripPrefix(strings.TrimSuffix(prefix, "/"), root)
	}
	for _, w := range wrap {
		h = w(h)
	}

	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: h}}
	srv.Start()
	t.Cleanup(func() {
		cancel()
		<-hubDone
		srv.Close()
	})
	return &testEnv{srv: srv, ui: u, store: st, hub: hub, base: srv.URL + prefix}
}

// get fetches path below the prefix and returns the response and its body.
func (e *testEnv) get(t testing.TB, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.base+strings.TrimPrefix(path, "/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body of %s: %v", path, err)
	}
	return resp, string(body)
}

func wantStatus(t testing.TB, resp *http.Response, body string, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status = %d, want %d; body:\n%s", resp.Request.URL.Path, resp.StatusCode, want, body)
	}
}

func wantContains(t testing.TB, body string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(body, p) {
			t.Errorf("body does not contain %q; body:\n%s", p, body)
		}
	}
}

func uitoa(id uint) string { return strconv.FormatUint(uint64(id), 10) }

func urlParse(s string) (*url.URL, error) { return url.Parse(s) }
