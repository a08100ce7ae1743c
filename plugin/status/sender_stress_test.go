package status

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/forge"
	"github.com/octavo-ci/octavo/plugin/store"
)

// gatedPoster records posts in order and holds the first one until release
// is closed.
type gatedPoster struct {
	started chan struct{}
	release chan struct{}
	mu      sync.Mutex
	posts   []forge.StatusOptions
}

func (p *gatedPoster) CreateStatus(ctx context.Context, repo, sha string, opts forge.StatusOptions) (*forge.Status, error) {
	p.mu.Lock()
	first := len(p.posts) == 0
	p.mu.Unlock()
	if first {
		close(p.started)
		<-p.release
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.posts = append(p.posts, opts)
	return &forge.Status{State: opts.State}, nil
}

func (p *gatedPoster) snapshot() []forge.StatusOptions {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]forge.StatusOptions(nil), p.posts...)
}

// TestOutboxWriteDuringPost finishes a run while the post of its "Running"
// status is in flight: the final status must follow, and only once.
func TestOutboxWriteDuringPost(t *testing.T) {
	st, repo := newTestStore(t)
	poster := &gatedPoster{started: make(chan struct{}), release: make(chan struct{})}
	o := New(st, poster, testOptions())
	run := createRun(t, st, repo, testSHA)
	setRun(t, st, o, run, setState(store.RunActive))
	startSender(t, o)

	select {
	case <-poster.started:
	case <-time.After(5 * time.Second):
		t.Fatal("no post started within 5s")
	}
	setRun(t, st, o, run, finish(store.RunComplete, ""))
	close(poster.release)

	waitFor(t, 5*time.Second, "the final status", func() bool { return getRow(t, st, "octavo").SentVersion == 2 })
	// One more pass would show a repeated post.
	o.Wake()
	time.Sleep(100 * time.Millisecond)
	got := poster.snapshot()
	if len(got) != 2 {
		t.Fatalf("got %d posts %+v, want Running then Passed", len(got), got)
	}
	if got[0].Description != "Running" || got[1].State != forge.StateSuccess {
		t.Errorf("got posts %+v, want Running then success", got)
	}
}

// TestOutboxTwoSendersOnSQLite runs two senders, as two replicas would, on
// one SQLite file with many rows: every row arrives, and none twice.
func TestOutboxTwoSendersOnSQLite(t *testing.T) {
	st, repo := newTestStore(t)
	const rows = 300
	insertDueRows(t, st, repo, rows)

	poster := &recordingPoster{}
	a := New(st, poster, testOptions())
	b := New(st, poster, testOptions())
	startSender(t, a)
	startSender(t, b)

	waitFor(t, 30*time.Second, "every row delivered", func() bool { return undelivered(t, st) == 0 })
	_, posts := poster.snapshot()
	seen := map[string]int{}
	for _, p := range posts {
		seen[p.SHA]++
	}
	if len(seen) != rows {
		t.Errorf("got posts for %d commits, want %d", len(seen), rows)
	}
	for sha, n := range seen {
		if n != 1 {
			t.Errorf("got %d posts for %s, want 1", n, sha)
		}
	}
}

// TestOutboxRestartAfterPostBeforeRecord stops the process between a
// successful post and recording it, by closing the database under the
// sender. After the restart the same status is posted a second time.
//
// This is accepted: the forge stores each post as one more entry and shows
// the newest per context, so an identical second post changes nothing a
// user or branch protection sees. Avoiding it would need the forge to
// accept an idempotency key, which neither Gitea nor Forgejo does.
func TestOutboxRestartAfterPostBeforeRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "octavo.db")
	st := openStore(t, path)
	repo := store.Repo{FullName: "alice/demo", Owner: "alice", Name: "demo"}
	if err := st.DB.WithContext(t.Context()).Create(&repo).Error; err != nil {
		t.Fatal(err)
	}
	crashing := &recordingPoster{fail: func(int) error {
		_ = st.Close() // the forge has the status; the process dies now
		return nil
	}}
	first := New(st, crashing, testOptions())
	run := createRun(t, st, repo, testSHA)
	setRun(t, st, first, run, finish(store.RunComplete, ""))
	stop := startSender(t, first)
	waitFor(t, 5*time.Second, "the first post", func() bool { _, posts := crashing.snapshot(); return len(posts) == 1 })
	stop()

	st2 := openStore(t, path)
	if row := getRow(t, st2, "octavo"); row.SentVersion != 0 {
		t.Fatalf("got sent version %d, want the post unrecorded", row.SentVersion)
	}
	working := &recordingPoster{}
	opts := testOptions()
	// The claim hides the row for PostTimeout plus leaseSlack; a restarted
	// sender picks it up after that.
	opts.Now = func() time.Time { return time.Now().Add(defaultPostTimeout + leaseSlack + time.Minute) }
	second := New(st2, working, opts)
	startSender(t, second)

	waitFor(t, 5*time.Second, "the repeated post", func() bool { return getRow(t, st2, "octavo").SentVersion == 1 })
	_, before := crashing.snapshot()
	_, after := working.snapshot()
	if len(after) != 1 || after[0].Opts != before[0].Opts {
		t.Errorf("got %+v after the restart, want exactly one repeat of %+v", after, before[0].Opts)
	}
}

// TestOutboxRejectedPostIsNoHotLoop posts to a forge that rejects every
// status with 422 and counts its requests over a bounded time: the capped
// backoff must space them out, and retries must go on.
func TestOutboxRejectedPostIsNoHotLoop(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, `{"message":"invalid state"}`, http.StatusUnprocessableEntity)
	}))
	t.Cleanup(srv.Close)
	checkRequestRate(t, forge.New(srv.URL, "hot-loop-test-token", forge.KindGitea, nil), requests.Load)
}

// TestOutboxForgeDownIsNoHotLoop does the same with nothing listening at
// the forge's address.
func TestOutboxForgeDownIsNoHotLoop(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	var requests atomic.Int64
	counting := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		requests.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	checkRequestRate(t, forge.New("http://"+addr, "hot-loop-test-token", forge.KindGitea, counting), requests.Load)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// checkRequestRate runs a sender with five failing rows for one second and
// bounds the forge requests: with a 40 ms cap each row gets at most about
// 25, a hot loop thousands.
func checkRequestRate(t *testing.T, client *forge.Client, count func() int64) {
	t.Helper()
	st, repo := newTestStore(t)
	const rows = 5
	insertDueRows(t, st, repo, rows)
	opts := testOptions()
	opts.MinBackoff, opts.MaxBackoff = 10*time.Millisecond, 40*time.Millisecond
	o := New(st, client, opts)
	stop := startSender(t, o)

	time.Sleep(time.Second)
	half := count()
	time.Sleep(time.Second)
	stop()
	total := count()

	if limit := int64(rows * (2000/40 + 5)); total > limit {
		t.Errorf("got %d requests in 2s for %d rows, want at most %d", total, rows, limit)
	}
	if later := total - half; later < rows*5 {
		t.Errorf("got %d requests in the second second, want retries to go on (at least %d)", later, rows*5)
	}
	var maxAttempts int
	if err := st.DB.WithContext(t.Context()).Model(&store.CommitStatus{}).Select("MAX(attempts)").Scan(&maxAttempts).Error; err != nil {
		t.Fatal(err)
	}
	if maxAttempts < 10 {
		t.Errorf("got at most %d attempts per row, want the attempts counted", maxAttempts)
	}
}

// TestOutboxManyPendingRows delivers 10,000 due rows and bounds the time and
// the heap the sender takes.
func TestOutboxManyPendingRows(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 rows skipped with -short")
	}
	st, repo := newTestStore(t)
	const rows = 10_000
	insertDueRows(t, st, repo, rows)

	var posts atomic.Int64
	poster := countingPoster{n: &posts}
	o := New(st, poster, testOptions())
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	startSender(t, o)

	var peak uint64
	waitFor(t, 2*time.Minute, "10,000 rows delivered", func() bool {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peak = max(peak, m.HeapInuse)
		return posts.Load() >= rows && undelivered(t, st) == 0
	})
	elapsed := time.Since(start)
	t.Logf("delivered %d rows in %v; heap in use %d MiB before, at most %d MiB during", rows, elapsed, before.HeapInuse>>20, peak>>20)
	if got := posts.Load(); got != rows {
		t.Errorf("got %d posts, want %d", got, rows)
	}
	if grow := int64(peak) - int64(before.HeapInuse); grow > 64<<20 {
		t.Errorf("got heap growth of %d MiB, want the sender to read rows in bounded batches", grow>>20)
	}
}

type countingPoster struct{ n *atomic.Int64 }

func (p countingPoster) CreateStatus(ctx context.Context, repo, sha string, opts forge.StatusOptions) (*forge.Status, error) {
	p.n.Add(1)
	return &forge.Status{State: opts.State}, nil
}

// insertDueRows writes n due rows, one commit each, as if n runs had
// finished while the sender was down.
func insertDueRows(t *testing.T, st *store.Store, repo store.Repo, n int) {
	t.Helper()
	now := time.Now().UTC()
	batch := make([]store.CommitStatus, 0, n)
	for i := range n {
		batch = append(batch, store.CommitStatus{
			RepoID: repo.ID, SHA: shaOf(i), Context: "octavo", RunID: uint(i + 1),
			State: string(forge.StateSuccess), Description: "Passed", Version: 1, NextAttemptAt: now,
		})
	}
	if err := st.DB.WithContext(t.Context()).CreateInBatches(&batch, 500).Error; err != nil {
		t.Fatal(err)
	}
}

func shaOf(i int) string {
	const hex = "0123456789abcdef"
	b := []byte("0000000000000000000000000000000000000000")
	for p := len(b) - 1; i > 0; p-- {
		b[p] = hex[i%16]
		i /= 16
	}
	return string(b)
}

func undelivered(t *testing.T, st *store.Store) int64 {
	t.Helper()
	var n int64
	if err := st.DB.WithContext(t.Context()).Model(&store.CommitStatus{}).Where("sent_version < version").Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}
