package status

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/octavo-ci/octavo/plugin/forge"
	"github.com/octavo-ci/octavo/plugin/store"
)

const testSHA = "0123456789abcdef0123456789abcdef01234567"

// post is one status the fake poster received.
type post struct {
	Repo, SHA string
	Opts      forge.StatusOptions
	At        time.Time
}

// recordingPoster records posts; fail, when set, decides per call whether
// the post fails.
type recordingPoster struct {
	mu    sync.Mutex
	calls int
	posts []post // successful posts only
	fail  func(call int) error
}

func (p *recordingPoster) CreateStatus(ctx context.Context, repo, sha string, opts forge.StatusOptions) (*forge.Status, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.fail != nil {
		if err := p.fail(p.calls); err != nil {
			return nil, err
		}
	}
	p.posts = append(p.posts, post{Repo: repo, SHA: sha, Opts: opts, At: time.Now()})
	return &forge.Status{State: opts.State, Context: opts.Context, Description: opts.Description}, nil
}

func (p *recordingPoster) snapshot() (calls int, posts []post) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls, append([]post(nil), p.posts...)
}

func openStore(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), store.Options{DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// newTestStore opens a fresh SQLite file with one repository.
func newTestStore(t *testing.T) (*store.Store, store.Repo) {
	t.Helper()
	st := openStore(t, filepath.Join(t.TempDir(), "octavo.db"))
	repo := store.Repo{FullName: "alice/demo", Owner: "alice", Name: "demo"}
	if err := st.DB.WithContext(t.Context()).Create(&repo).Error; err != nil {
		t.Fatal(err)
	}
	return st, repo
}

func createRun(t *testing.T, st *store.Store, repo store.Repo, sha string) *store.Run {
	t.Helper()
	run := &store.Run{RepoID: repo.ID, Ref: "refs/heads/main", Branch: "main", SHA: sha, State: store.RunQueued}
	if err := st.DB.WithContext(t.Context()).Create(run).Error; err != nil {
		t.Fatal(err)
	}
	return run
}

// setRun changes the run and notifies the outbox in one transaction, as the
// queue and the ingester do.
func setRun(t *testing.T, st *store.Store, o *Outbox, run *store.Run, change func(r *store.Run)) {
	t.Helper()
	change(run)
	err := st.DB.WithContext(t.Context()).Transaction(func(tx *gorm.DB) error {
		if err := tx.Save(run).Error; err != nil {
			return err
		}
		return o.RunChanged(tx, run)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func finish(state store.RunState, kind store.FailureKind) func(r *store.Run) {
	return func(r *store.Run) {
		start := time.Now().Add(-72 * time.Second)
		end := time.Now()
		r.State, r.FailureKind, r.StartedAt, r.FinishedAt = state, kind, &start, &end
	}
}

func setState(state store.RunState) func(r *store.Run) {
	return func(r *store.Run) { r.State = state }
}

func getRow(t *testing.T, st *store.Store, context string) store.CommitStatus {
	t.Helper()
	var row store.CommitStatus
	if err := st.DB.WithContext(t.Context()).Where("context = ?", context).Take(&row).Error; err != nil {
		t.Fatalf("read commit status row %s: %v", context, err)
	}
	return row
}

// startSender runs o.Run until the test ends and returns a stop function
// that waits for it to return.
func startSender(t *testing.T, o *Outbox) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx) }()

	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v, want nil after cancel", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return within 10s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testOptions() Options {
	u, _ := url.Parse("http://127.0.0.1:8080/ci/")
	return Options{
		PublicURL:    u,
		MinBackoff:   10 * time.Millisecond,
		MaxBackoff:   40 * time.Millisecond,
		PollInterval: time.Hour, // only wake-ups and due times move the sender
	}
}

func TestOutboxNewestStateWins(t *testing.T) {
	st, repo := newTestStore(t)
	poster := &recordingPoster{}
	o := New(st, poster, testOptions())
	run := createRun(t, st, repo, testSHA)

	setRun(t, st, o, run, setState(store.RunQueued))
	setRun(t, st, o, run, setState(store.RunActive))
	setRun(t, st, o, run, finish(store.RunComplete, ""))
	startSender(t, o)

	waitFor(t, 5*time.Second, "the final status", func() bool {
		return getRow(t, st, "octavo").SentVersion == 3
	})
	_, posts := poster.snapshot()
	if len(posts) != 1 {
		t.Fatalf("got %d posts %+v, want only the newest state", len(posts), posts)
	}
	got := posts[0]
	if got.Repo != "alice/demo" || got.SHA != testSHA || got.Opts.Context != "octavo" {
		t.Errorf("got post to %s %s %s, want alice/demo %s octavo", got.Repo, got.SHA, got.Opts.Context, testSHA)
	}
	if got.Opts.State != forge.StateSuccess || got.Opts.Description != "Passed in 1m12s" {
		t.Errorf("got %s %q, want success \"Passed in 1m12s\"", got.Opts.State, got.Opts.Description)
	}
	if want := "http://127.0.0.1:8080/ci/runs/1"; got.Opts.TargetURL != want {
		t.Errorf("got target URL %q, want %q", got.Opts.TargetURL, want)
	}
}

func TestOutboxWakeSendsWithinMilliseconds(t *testing.T) {
	st, repo := newTestStore(t)
	poster := &recordingPoster{}
	o := New(st, poster, testOptions()) // one-hour poll: only Wake can explain a quick post
	startSender(t, o)
	run := createRun(t, st, repo, testSHA)

	written := time.Now()
	setRun(t, st, o, run, setState(store.RunActive))

	waitFor(t, 2*time.Second, "the pending status", func() bool {
		_, posts := poster.snapshot()
		return len(posts) == 1
	})
	_, posts := poster.snapshot()
	if lag := posts[0].At.Sub(written); lag > time.Second {
		t.Errorf("got the status %v after the write, want well under a second", lag)
	}
}

func TestOutboxUnchangedStatusNotPostedAgain(t *testing.T) {
	st, repo := newTestStore(t)
	poster := &recordingPoster{}
	o := New(st, poster, testOptions())
	startSender(t, o)
	run := createRun(t, st, repo, testSHA)

	setRun(t, st, o, run, setState(store.RunActive))
	waitFor(t, 5*time.Second, "the first post", func() bool { return getRow(t, st, "octavo").SentVersion == 1 })
	setRun(t, st, o, run, setState(store.RunActive))
	// A later, different row proves the sender went past the unchanged one.
	other := createRun(t, st, repo, strings.Repeat("b", 40))
	setRun(t, st, o, other, setState(store.RunActive))
	waitFor(t, 5*time.Second, "the second run's post", func() bool {
		_, posts := poster.snapshot()
		return len(posts) == 2
	})

	if row := getRow(t, st, "octavo"); row.Version != 1 {
		t.Errorf("got version %d after an unchanged write, want 1", row.Version)
	}
	_, posts := poster.snapshot()
	if posts[1].SHA != other.SHA {
		t.Errorf("got second post for %s, want only the other commit %s", posts[1].SHA, other.SHA)
	}
}

func TestOutboxLatePendingAfterFinalNeverSent(t *testing.T) {
	st, repo := newTestStore(t)
	poster := &recordingPoster{}
	o := New(st, poster, testOptions())
	run := createRun(t, st, repo, testSHA)

	setRun(t, st, o, run, finish(store.RunFailed, store.FailureTimedOut))
	// A stale "active" notification arriving after the final one.
	late := *run
	late.State = store.RunActive
	err := st.DB.WithContext(t.Context()).Transaction(func(tx *gorm.DB) error { return o.RunChanged(tx, &late) })
	if err != nil {
		t.Fatal(err)
	}
	startSender(t, o)

	waitFor(t, 5*time.Second, "the final status", func() bool { return getRow(t, st, "octavo").SentVersion == 1 })
	row := getRow(t, st, "octavo")
	if row.State != string(forge.StateError) || row.Version != 1 {
		t.Errorf("got row %s version %d, want error version 1", row.State, row.Version)
	}
	_, posts := poster.snapshot()
	for _, p := range posts {
		if p.Opts.State == forge.StatePending {
			t.Errorf("got a pending post after the final state: %+v", p)
		}
	}
}

func TestOutboxOlderRunNeverOverwritesNewer(t *testing.T) {
	st, repo := newTestStore(t)
	poster := &recordingPoster{}
	o := New(st, poster, testOptions())
	older := createRun(t, st, repo, testSHA)
	newer := createRun(t, st, repo, testSHA)

	setRun(t, st, o, newer, setState(store.RunActive))
	setRun(t, st, o, older, func(r *store.Run) { r.State, r.ReplacedBy = store.RunReplaced, &newer.ID })

	row := getRow(t, st, "octavo")
	if row.RunID != newer.ID || row.Description != "Running" {
		t.Errorf("got row of run %d %q, want run %d \"Running\"", row.RunID, row.Description, newer.ID)
	}
}

func TestOutboxRetriesWithCappedBackoff(t *testing.T) {
	st, repo := newTestStore(t)
	down := &forge.Error{Method: "POST", Path: "/api/v1/repos/alice/demo/statuses/x", StatusCode: 503}
	var (
		mu       sync.Mutex
		attempts []time.Time
	)
	poster := &recordingPoster{fail: func(call int) error {
		mu.Lock()
		attempts = append(attempts, time.Now())
		mu.Unlock()
		if call <= 8 {
			return down
		}
		return nil
	}}
	o := New(st, poster, testOptions())
	run := createRun(t, st, repo, testSHA)
	setRun(t, st, o, run, finish(store.RunComplete, ""))
	startSender(t, o)

	waitFor(t, 10*time.Second, "delivery after 8 failures", func() bool { return getRow(t, st, "octavo").SentVersion == 1 })
	calls, posts := poster.snapshot()
	if calls != 9 || len(posts) != 1 {
		t.Errorf("got %d calls and %d posts, want 9 and 1", calls, len(posts))
	}
	mu.Lock()
	defer mu.Unlock()
	// Waits are 10, 20, 40, 40, 40 ... ms: the cap must hold the later gaps
	// far below the 2.56 s an uncapped doubling would reach.
	for i := 4; i < len(attempts); i++ {
		if gap := attempts[i].Sub(attempts[i-1]); gap > time.Second {
			t.Errorf("got %v between attempts %d and %d, want the 40ms cap plus scheduling noise", gap, i, i+1)
		}
	}
	for i := 1; i < 3; i++ {
		if gap := attempts[i].Sub(attempts[i-1]); gap < 10*time.Millisecond {
			t.Errorf("got %v between attempts %d and %d, want at least the 10ms minimum backoff", gap, i, i+1)
		}
	}
	row := getRow(t, st, "octavo")
	if row.Attempts != 0 || row.LastError != "" {
		t.Errorf("got attempts %d last error %q after delivery, want 0 and empty", row.Attempts, row.LastError)
	}
}

func TestOutboxFailureRecordedInRow(t *testing.T) {
	st, repo := newTestStore(t)
	poster := &recordingPoster{fail: func(int) error {
		return &forge.Error{Method: "POST", Path: "/api/v1/repos/alice/demo/statuses/x", StatusCode: 401, Body: `{"message":"token is required"}`}
	}}
	opts := testOptions()
	opts.MinBackoff, opts.MaxBackoff = time.Hour, time.Hour
	o := New(st, poster, opts)
	run := createRun(t, st, repo, testSHA)
	setRun(t, st, o, run, finish(store.RunComplete, ""))
	startSender(t, o)

	waitFor(t, 5*time.Second, "the failed attempt", func() bool { return getRow(t, st, "octavo").Attempts == 1 })
	row := getRow(t, st, "octavo")
	if !strings.Contains(row.LastError, "401") || !strings.Contains(row.LastError, "token is required") {
		t.Errorf("got last error %q, want the 401 and its message", row.LastError)
	}
	if wait := time.Until(row.NextAttemptAt); wait < 50*time.Minute {
		t.Errorf("got next attempt in %v, want about the one-hour backoff", wait)
	}
	var stored store.Run
	if err := st.DB.WithContext(t.Context()).First(&stored, run.ID).Error; err != nil {
		t.Fatal(err)
	}
	if stored.State != store.RunComplete {
		t.Errorf("got run state %s after a failed post, want complete", stored.State)
	}
}

func TestOutboxSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "octavo.db")
	st := openStore(t, path)
	repo := store.Repo{FullName: "alice/demo", Owner: "alice", Name: "demo"}
	if err := st.DB.WithContext(t.Context()).Create(&repo).Error; err != nil {
		t.Fatal(err)
	}

	failing := &recordingPoster{fail: func(int) error { return errors.New("dial tcp 127.0.0.1:3000: connection refused") }}
	first := New(st, failing, testOptions())
	run := createRun(t, st, repo, testSHA)
	setRun(t, st, first, run, finish(store.RunFailed, store.FailurePipeline))
	stop := startSender(t, first)
	waitFor(t, 5*time.Second, "a failed attempt", func() bool { return getRow(t, st, "octavo").Attempts >= 1 })
	stop()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st2 := openStore(t, path)
	working := &recordingPoster{}
	second := New(st2, working, testOptions())
	startSender(t, second)

	waitFor(t, 5*time.Second, "delivery after the restart", func() bool { return getRow(t, st2, "octavo").SentVersion == 1 })
	_, posts := working.snapshot()
	if len(posts) != 1 {
		t.Fatalf("got %d posts after the restart, want 1", len(posts))
	}
	if posts[0].Opts.State != forge.StateFailure || posts[0].Opts.Description != "Failed" {
		t.Errorf("got %s %q, want failure \"Failed\"", posts[0].Opts.State, posts[0].Opts.Description)
	}
}

func TestOutboxFirstFailedJob(t *testing.T) {
	st, repo := newTestStore(t)
	poster := &recordingPoster{}
	o := New(st, poster, testOptions())
	run := createRun(t, st, repo, testSHA)

	t0 := time.Now()
	jobs := []store.Job{
		{RunID: run.ID, Name: "lint", Position: 0, Inputs: "[]", State: "failed", AllowFailure: true, FinishedAt: ptr(t0)},
		{RunID: run.ID, Name: "test", Position: 1, Inputs: "[]", State: "failed", FinishedAt: ptr(t0.Add(2 * time.Second))},
		{RunID: run.ID, Name: "build", Position: 2, Inputs: "[]", State: "failed", FinishedAt: ptr(t0.Add(time.Second))},
		{RunID: run.ID, Name: "deploy", Position: 3, Inputs: "[]", State: "skipped"},
	}
	if err := st.DB.WithContext(t.Context()).Create(&jobs).Error; err != nil {
		t.Fatal(err)
	}
	setRun(t, st, o, run, func(r *store.Run) {
		r.State, r.FailureKind, r.Error = store.RunFailed, store.FailurePipeline, "2 jobs failed"
	})

	if row := getRow(t, st, "octavo"); row.Description != "Failed: build" {
		t.Errorf("got %q, want \"Failed: build\" (the first to fail that was not allowed to)", row.Description)
	}
}

func TestOutboxSkippedRunWritesNothing(t *testing.T) {
	st, repo := newTestStore(t)
	o := New(st, &recordingPoster{}, testOptions())
	run := createRun(t, st, repo, testSHA)

	setRun(t, st, o, run, setState(store.RunSkipped))

	var n int64
	if err := st.DB.WithContext(t.Context()).Model(&store.CommitStatus{}).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("got %d commit status rows for a skipped run, want 0", n)
	}
}

func TestOutboxJobStatuses(t *testing.T) {
	st, repo := newTestStore(t)
	opts := testOptions()
	opts.JobStatuses = true
	opts.Context = "ci"
	o := New(st, &recordingPoster{}, opts)
	run := createRun(t, st, repo, testSHA)
	setRun(t, st, o, run, setState(store.RunActive))

	changeJob := func(job store.Job) {
		t.Helper()
		err := st.DB.WithContext(t.Context()).Transaction(func(tx *gorm.DB) error { return o.JobChanged(tx, run, &job) })
		if err != nil {
			t.Fatal(err)
		}
	}
	changeJob(store.Job{RunID: run.ID, Name: "test", State: "running"})
	changeJob(store.Job{RunID: run.ID, Name: "build", State: "running"})
	changeJob(store.Job{RunID: run.ID, Name: "test", State: "failed", Error: "exit status 2"})
	setRun(t, st, o, run, func(r *store.Run) { r.State, r.Error = store.RunCanceled, "branch deleted" })

	tests := []struct {
		context string
		state   forge.StatusState
		desc    string
	}{
		{"ci", forge.StateError, "Canceled"},
		{"ci/test", forge.StateFailure, "Failed: exit status 2"},
		{"ci/build", forge.StateError, "Canceled"}, // still running when the run ended
	}
	for _, tt := range tests {
		row := getRow(t, st, tt.context)
		if row.State != string(tt.state) || row.Description != tt.desc {
			t.Errorf("context %s: got %s %q, want %s %q", tt.context, row.State, row.Description, tt.state, tt.desc)
		}
	}
}

func TestOutboxJobStatusesOff(t *testing.T) {
	st, repo := newTestStore(t)
	o := New(st, &recordingPoster{}, testOptions())
	run := createRun(t, st, repo, testSHA)

	err := st.DB.WithContext(t.Context()).Transaction(func(tx *gorm.DB) error {
		return o.JobChanged(tx, run, &store.Job{RunID: run.ID, Name: "test", State: "running"})
	})
	if err != nil {
		t.Fatal(err)
	}

	var n int64
	if err := st.DB.WithContext(t.Context()).Model(&store.CommitStatus{}).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("got %d rows with job statuses off, want 0", n)
	}
}

// switchableForge is a fake forge on a fixed loopback port that can be
// taken down (nothing listens, so connections are refused) and brought back.
type switchableForge struct {
	addr string
	mu   sync.Mutex
	srv  *http.Server
	got  []forge.StatusOptions
}

func newSwitchableForge(t *testing.T) *switchableForge {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &switchableForge{addr: ln.Addr().String()}
	f.serve(t, ln)
	t.Cleanup(f.down)
	return f
}

func (f *switchableForge) serve(t *testing.T, ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(f.handle), ReadHeaderTimeout: 5 * time.Second}
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (f *switchableForge) handle(w http.ResponseWriter, r *http.Request) {
	var opts forge.StatusOptions
	if err := json.NewDecoder(r.Body).Decode(&opts); err != nil {
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	f.mu.Lock()
	f.got = append(f.got, opts)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(`{"id":1,"status":"` + string(opts.State) + `"}`))
}

func (f *switchableForge) down() {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (f *switchableForge) up(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", f.addr, err)
	}
	f.serve(t, ln)
}

func (f *switchableForge) received() []forge.StatusOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]forge.StatusOptions(nil), f.got...)
}

func TestOutboxForgeOutage(t *testing.T) {
	st, repo := newTestStore(t)
	fake := newSwitchableForge(t)
	client := forge.New("http://"+fake.addr, "outage-test-token", forge.KindGitea, nil)
	o := New(st, client, testOptions())
	startSender(t, o)
	run := createRun(t, st, repo, testSHA)

	setRun(t, st, o, run, setState(store.RunActive))
	waitFor(t, 5*time.Second, "the running status", func() bool { return len(fake.received()) == 1 })

	fake.down()
	setRun(t, st, o, run, finish(store.RunComplete, ""))
	waitFor(t, 5*time.Second, "three failed attempts during the outage", func() bool {
		return getRow(t, st, "octavo").Attempts >= 3
	})
	if row := getRow(t, st, "octavo"); !strings.Contains(row.LastError, "connection refused") {
		t.Errorf("got last error %q, want the refused connection", row.LastError)
	}
	var stored store.Run
	if err := st.DB.WithContext(t.Context()).First(&stored, run.ID).Error; err != nil {
		t.Fatal(err)
	}
	if stored.State != store.RunComplete {
		t.Errorf("got run state %s during the outage, want complete", stored.State)
	}

	fake.up(t)
	waitFor(t, 5*time.Second, "the final status after the outage", func() bool {
		return getRow(t, st, "octavo").SentVersion == 2
	})
	// The sender posts only rows whose newest version is unsent, so a
	// delivered row can never produce a second post.
	if row := getRow(t, st, "octavo"); row.SentVersion != row.Version {
		t.Errorf("got sent version %d of %d, want the row fully delivered", row.SentVersion, row.Version)
	}

	got := fake.received()
	if len(got) != 2 {
		t.Fatalf("got %d posts %+v, want Running then exactly one final status", len(got), got)
	}
	if got[0].State != forge.StatePending || got[0].Description != "Running" {
		t.Errorf("got first post %s %q, want pending \"Running\"", got[0].State, got[0].Description)
	}
	if got[1].State != forge.StateSuccess || got[1].Description != "Passed in 1m12s" {
		t.Errorf("got final post %s %q, want success \"Passed in 1m12s\"", got[1].State, got[1].Description)
	}
}

// blockingPoster holds every post until its context ends.
type blockingPoster struct{ started chan struct{} }

func (p *blockingPoster) CreateStatus(ctx context.Context, repo, sha string, opts forge.StatusOptions) (*forge.Status, error) {
	select {
	case p.started <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestOutboxShutdownMidPost(t *testing.T) {
	st, repo := newTestStore(t)
	poster := &blockingPoster{started: make(chan struct{}, 1)}
	o := New(st, poster, testOptions())
	run := createRun(t, st, repo, testSHA)
	setRun(t, st, o, run, finish(store.RunComplete, ""))
	stop := startSender(t, o)

	select {
	case <-poster.started:
	case <-time.After(5 * time.Second):
		t.Fatal("no post started within 5s")
	}
	stop()

	row := getRow(t, st, "octavo")
	if row.Attempts != 0 || row.SentVersion != 0 {
		t.Errorf("got attempts %d sent version %d, want the interrupted post neither counted nor marked sent", row.Attempts, row.SentVersion)
	}
	if wait := time.Until(row.NextAttemptAt); wait > time.Second {
		t.Errorf("got next attempt in %v, want the row due again at once", wait)
	}
}

// TestRecordSentReArmsOvertakenRow covers two replicas posting versions 1
// and 2 of a row at once: the one that delivered version 1 last cannot know
// which arrived at the forge last, so the row must post version 2 again.
func TestRecordSentReArmsOvertakenRow(t *testing.T) {
	st, repo := newTestStore(t)
	o := New(st, &recordingPoster{}, testOptions())
	run := createRun(t, st, repo, testSHA)
	setRun(t, st, o, run, setState(store.RunActive))
	v1 := getRow(t, st, "octavo")
	setRun(t, st, o, run, finish(store.RunComplete, ""))
	err := st.DB.WithContext(t.Context()).Model(&store.CommitStatus{}).Where("id = ?", v1.ID).Update("sent_version", 2).Error
	if err != nil {
		t.Fatal(err)
	}

	o.recordSent(t.Context(), &dueRow{CommitStatus: v1, RepoFullName: repo.FullName}, o.log)

	row := getRow(t, st, "octavo")
	if row.Version != 2 || row.SentVersion != 1 {
		t.Errorf("got version %d sent version %d, want version 2 due again (sent version 1)", row.Version, row.SentVersion)
	}
	if row.State != string(forge.StateSuccess) {
		t.Errorf("got state %s, want the newest state success kept", row.State)
	}
}
