package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/config"
	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/webhook"
	"github.com/octavo-ci/octavo/plugin/workspace/gittest"
)

// hookSecret is the secret the captured fixtures were signed with.
const hookSecret = "fixture-secret-7Hq2"

const gitToken = "tok-plugin-52"

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newTestServer builds a server from environment-style settings on a
// fresh data folder; env adds to or overrides the defaults.
func newTestServer(t testing.TB, env map[string]string) (*Server, *config.Config) {
	t.Helper()
	vars := map[string]string{
		"OCTAVO_WEBHOOK_SECRET": hookSecret,
		"OCTAVO_DATA_DIR":       t.TempDir(),
		"OCTAVO_RUNNER":         runnerPath,
		"OCTAVO_FORGE_TOKEN":    gitToken,
		"OCTAVO_CATCH_UP":       "false",
		"OCTAVO_SHUTDOWN_GRACE": "2s",
		"OCTAVO_LOG_LEVEL":      "debug",
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load(nil, func(k string) string { return vars[k] }, io.Discard)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: cfg.LogLevel}))
	s, err := New(t.Context(), cfg, Options{Logger: logger})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, cfg
}

// start runs the server's workers until the test ends.
func start(t testing.TB, s *Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Server.Run: %v", err)
		}
	})
}

var deliveryCounter atomic.Int64

// signedRequest builds a Gitea-style delivery of event with body, signed
// with secret.
func signedRequest(t testing.TB, path, event string, body []byte, secret string) *http.Request {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitea-Event", event)
	req.Header.Set("X-Gitea-Delivery", fmt.Sprintf("test-delivery-%d", deliveryCounter.Add(1)))
	req.Header.Set("X-Gitea-Signature", webhook.Sign([]byte(secret), body))
	return req
}

// pushBody is a push payload in the forge's shape.
func pushBody(t testing.TB, repo, cloneURL, ref, before, after, message string) []byte {
	t.Helper()
	owner, name, _ := strings.Cut(repo, "/")
	b, err := json.Marshal(map[string]any{
		"ref": ref, "before": before, "after": after, "compare_url": "http://127.0.0.1/compare",
		"head_commit": map[string]any{"id": after, "message": message},
		"commits":     []any{map[string]any{"id": after, "message": message}},
		"repository": map[string]any{
			"name": name, "full_name": repo, "owner": map[string]any{"login": owner},
			"clone_url": cloneURL, "html_url": "http://127.0.0.1/" + repo, "default_branch": "main",
		},
		"pusher": map[string]any{"login": owner},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serveHTTP sends req through h and returns the response code and body.
func serveHTTP(h http.Handler, req *http.Request) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

type hookReply struct {
	Result    string `json:"result"`
	RunID     uint   `json:"run_id"`
	Duplicate bool   `json:"duplicate"`
	Error     string `json:"error"`
}

func decodeReply(t testing.TB, body string) hookReply {
	t.Helper()
	var r hookReply
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("decode reply %q: %v", body, err)
	}
	return r
}

// forgeRepo is a real repository published on a loopback git server.
type forgeRepo struct {
	*gittest.Repo
	srv      *gittest.Server
	name     string
	cloneURL string
}

func newForgeRepo(t testing.TB, name string) *forgeRepo {
	t.Helper()
	return &forgeRepo{Repo: gittest.NewRepo(t, "sha1"), srv: gittest.Serve(t, t.TempDir(), ""), name: name}
}

// commitAndPush commits files, publishes the repository and returns the
// new and the previous head.
func (r *forgeRepo) commitAndPush(t testing.TB, message string, files map[string]string) (sha, before string) {
	t.Helper()
	before = strings.Repeat("0", 40)
	if out, err := gitOutput(r.Dir, "rev-parse", "--verify", "-q", "HEAD"); err == nil {
		before = out
	}
	sha = r.Commit(message, files)
	r.cloneURL = r.srv.Publish(t, r.Repo, r.name)
	return sha, before
}

func gitOutput(dir string, args ...string) (string, error) {
	cmd := execCommand("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// waitRun polls the store until run id is final or the deadline passes.
func waitRun(t testing.TB, s *Server, id uint) *store.Run {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, err := store.GetRun(t.Context(), s.st.DB, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State.Final() {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %d still %s after 60s", id, r.State)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func gittestTag(t testing.TB, repo *forgeRepo, tag string) {
	t.Helper()
	gittest.Git(t, repo.Dir, "tag", tag)
	repo.cloneURL = repo.srv.Publish(t, repo.Repo, repo.name)
}

// apiRun decodes the fields of a run that the server tests check.
type apiRun struct {
	ID           uint       `json:"id"`
	Repo         string     `json:"repo"`
	Ref          string     `json:"ref"`
	Branch       string     `json:"branch,omitempty"`
	Tag          string     `json:"tag,omitempty"`
	SHA          string     `json:"sha"`
	Event        string     `json:"event"`
	State        string     `json:"state"`
	FailureKind  string     `json:"failure_kind"`
	Error        string     `json:"error,omitempty"`
	Message      string     `json:"message,omitempty"`
	Pusher       string     `json:"pusher,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	DispatchedAt *time.Time `json:"dispatched_at"`
	ResolvedAt   *time.Time `json:"resolved_at"`
	ReplacedBy   *uint      `json:"replaced_by"`
	Attempts     int        `json:"attempts"`
	LastSeq      int64      `json:"last_seq"`
	URL          string     `json:"url"`
	Jobs         []apiJob   `json:"jobs,omitempty"`
}

type apiJob struct {
	Name       string     `json:"name"`
	State      string     `json:"state"`
	Error      string     `json:"error,omitempty"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Steps      []apiStep  `json:"steps"`
}

type apiStep struct {
	Seq        int        `json:"seq"`
	Cmd        string     `json:"cmd"`
	ExitCode   *int       `json:"exit_code"`
	Error      string     `json:"error,omitempty"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}
