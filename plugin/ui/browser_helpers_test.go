package ui

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// requireBrowserEnv, when set, turns a missing Chromium into a test failure
// instead of a skip. CI sets it.
const requireBrowserEnv = "OCTAVO_REQUIRE_BROWSER"

// newBrowser starts a headless Chromium with a fresh profile and returns a
// chromedp context for one tab, closed when the test ends. Without Chromium
// it skips the test, unless OCTAVO_REQUIRE_BROWSER is set.
func newBrowser(t testing.TB) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv(requireBrowserEnv) != "" {
			t.Fatalf("Chromium is required (%s is set) but none of chromium, chromium-browser, google-chrome is on PATH; install Debian's chromium package", requireBrowserEnv)
		}
		t.Skipf("Chromium is not installed: install Debian's chromium package (apt-get install -y chromium) to run the browser test; set %s=1 to fail instead of skipping", requireBrowserEnv)
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium %s: %v", path, err)
	}
	return ctx
}

// evalJS evaluates expr in the page with a bounded wait.
func evalJS[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS polls expr until it is true, for at most 20 seconds.
func waitJS(t testing.TB, ctx context.Context, expr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if evalJS[bool](t, ctx, expr) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("still false after 20s: %s", expr)
}

// artifactDir returns the folder for test artifacts: $OCTAVO_ARTIFACTS, or
// testdata/artifacts in the package folder (ignored by git).
func artifactDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("OCTAVO_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create artifact folder: %v", err)
	}
	return dir
}

// hijackTracker records the connections that handlers hijack (websockets),
// so a test can cut them from the server side.
type hijackTracker struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (h *hijackTracker) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&hijackRecorder{ResponseWriter: w, tracker: h}, r)
	})
}

// closeAll closes every hijacked connection and returns how many it closed.
func (h *hijackTracker) closeAll() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.conns)
	for _, c := range h.conns {
		_ = c.Close()
	}
	h.conns = nil
	return n
}

type hijackRecorder struct {
	http.ResponseWriter
	tracker *hijackTracker
}

func (w *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("response writer cannot hijack")
	}
	conn, rw, err := hj.Hijack()
	if err == nil {
		w.tracker.mu.Lock()
		w.tracker.conns = append(w.tracker.conns, conn)
		w.tracker.mu.Unlock()
	}
	return conn, rw, err
}

// seqCheckJS returns a script that lists the data-seq values of every log
// line on the page, in document order per pane.
const seqListJS = `Array.from(document.querySelectorAll('.log .line')).map(e => Number(e.dataset.seq))`
