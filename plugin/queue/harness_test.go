package queue

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/webhook"
	"github.com/octavo-ci/octavo/plugin/workspace"
	"github.com/octavo-ci/octavo/plugin/workspace/gittest"
)

const (
	testToken = "tok-queue-41"
	repoName  = "acme/app"
)

// recorder is a run and job observer that keeps every state it saw.
type recorder struct {
	mu         sync.Mutex
	runs       map[uint][]store.RunState
	jobs       []string
	live       map[uint][]int64
	liveEvents map[uint][]store.RunEvent
	final      map[uint]store.RunState
	// unwatched makes the live sink report that no run has viewers.
	unwatched bool
}

func newRecorder() *recorder {
	return &recorder{runs: map[uint][]store.RunState{}, live: map[uint][]int64{}, liveEvents: map[uint][]store.RunEvent{}, final: map[uint]store.RunState{}}
}

func (r *recorder) RunChanged(tx *gorm.DB, run *store.Run) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs[run.ID] = append(r.runs[run.ID], run.State)
	return nil
}

func (r *recorder) JobChanged(tx *gorm.DB, run *store.Run, job *store.Job) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.jobs = append(r.jobs, job.Name+":"+job.State)
	return nil
}

// liveRecorder implements notify.LiveSink.
type liveRecorder struct{ *recorder }

// Watched is true unless the recorder is set unwatched, so that every
// committed event is recorded.
func (l liveRecorder) Watched(uint) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.unwatched
}

func (l liveRecorder) Publish(runID uint, events []store.RunEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range events {
		l.live[runID] = append(l.live[runID], e.Seq)
	}
	l.liveEvents[runID] = append(l.liveEvents[runID], events...)
}

func (l liveRecorder) RunChanged(run store.Run) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.final[run.ID] = run.State
}

func (r *recorder) states(id uint) []store.RunState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.RunState(nil), r.runs[id]...)
}

// harness is a queue on a real SQLite file with a real git server.
type harness struct {
	t        *testing.T
	st       *store.Store
	q        *Queue
	rec      *recorder
	repo     *gittest.Repo
	srv      *gittest.Server
	cloneURL string
	dataDir  string
	secrets  map[string]string
	n        int
}

type harnessOption func(*Options)

func newHarness(t *testing.T, runner string, opts ...harnessOption) *harness {
	t.Helper()
	dataDir := t.TempDir()
	return newHarnessDSN(t, runner, filepath.Join(dataDir, "octavo.db"), dataDir, opts...)
}

// newHarnessDSN is newHarness on the database dsn.
func newHarnessDSN(t *testing.T, runner, dsn, dataDir string, opts ...harnessOption) *harness {
	t.Helper()
	st, err := store.Open(t.Context(), store.Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })

	h := &harness{t: t, st: st, rec: newRecorder(), dataDir: dataDir, secrets: map[string]string{"TOKEN": "s3"}}
	h.repo = gittest.NewRepo(t, "sha1")
	h.srv = gittest.Serve(t, t.TempDir(), testToken)

	o := Options{
		Store:         st,
		Workspaces:    workspace.New(dataDir, mustParseURL(t, h.srv.URL+"/"), testToken),
		RunnerPath:    runner,
		MaxRuns:       2,
		Parallel:      2,
		ShutdownGrace: 5 * time.Second,
		KillGrace:     2 * time.Second,
		Secrets:       func(string) (map[string]string, error) { return h.secrets, nil },
		Replica:       "test",
		RunObserver:   h.rec,
		JobObserver:   h.rec,
		Live:          liveRecorder{h.rec},
		Logger:        slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range opts {
		f(&o)
	}
	h.q = New(o)
	return h
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func fakeRunner(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "fake-runner.sh"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs the queue until the test ends.
func (h *harness) start() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.q.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("Queue.Run: %v", err)
		}
	})
}

// push commits files on branch, publishes the repository and takes in a
// push delivery for the new commit; it returns the intake result.
func (h *harness) push(branch string, files map[string]string) IntakeResult {
	h.t.Helper()
	h.n++
	switch {
	case exec.Command("git", "-C", h.repo.Dir, "rev-parse", "--verify", "-q", "refs/heads/"+branch).Run() == nil:
		gittest.Git(h.t, h.repo.Dir, "checkout", "--quiet", branch)
	case exec.Command("git", "-C", h.repo.Dir, "rev-parse", "--verify", "-q", "HEAD").Run() == nil:
		gittest.Git(h.t, h.repo.Dir, "checkout", "--quiet", "-b", branch)
	default:
		gittest.Git(h.t, h.repo.Dir, "symbolic-ref", "HEAD", "refs/heads/"+branch)
	}
	sha := h.repo.Commit(fmt.Sprintf("commit %d", h.n), files)
	h.cloneURL = h.srv.Publish(h.t, h.repo, repoName)
	return h.intake(&webhook.Delivery{
		ID: fmt.Sprintf("delivery-%d", h.n), Event: "push", Action: webhook.ActionRun,
		Repo: webhook.Repo{Owner: "acme", Name: "app", FullName: repoName, CloneURL: h.cloneURL},
		Ref:  "refs/heads/" + branch,
		Push: &webhook.Push{SHA: sha, Ref: "refs/heads/" + branch, Branch: branch, Repo: repoName, CloneURL: h.cloneURL, Message: "m"},
	})
}

func (h *harness) intake(d *webhook.Delivery) IntakeResult {
	h.t.Helper()
	res, err := h.q.Intake(h.t.Context(), d)
	if err != nil {
		h.t.Fatalf("Intake: %v", err)
	}
	return res
}

// waitRun polls until run id is in a final state, or fails the test after
// a deadline.
func (h *harness) waitRun(id uint, ok func(*store.Run) bool) *store.Run {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := store.GetRun(h.t.Context(), h.st.DB, id)
		if err != nil {
			h.t.Fatal(err)
		}
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("run %d still %s after 30s", id, r.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) waitFinal(id uint) *store.Run {
	h.t.Helper()
	return h.waitRun(id, func(r *store.Run) bool { return r.State.Final() })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func mustParseURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
