package status

import (
	"fmt"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/forge"
	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/store/storetest"
)

func newPostgresStore(t *testing.T) (*store.Store, store.Repo) {
	t.Helper()
	st := openStore(t, storetest.Postgres(t))
	repo := store.Repo{FullName: "alice/demo", Owner: "alice", Name: "demo"}
	if err := st.DB.WithContext(t.Context()).Create(&repo).Error; err != nil {
		t.Fatal(err)
	}
	return st, repo
}

// TestOutboxTwoSendersOnPostgres runs two senders on one database, as two
// replicas do: the claim lets exactly one of them post each row.
func TestOutboxTwoSendersOnPostgres(t *testing.T) {
	st, repo := newPostgresStore(t)
	poster := &recordingPoster{}
	first := New(st, poster, testOptions())
	second := New(st, poster, testOptions())

	const commits = 20
	for i := range commits {
		run := createRun(t, st, repo, fmt.Sprintf("%040x", i+1))
		setRun(t, st, first, run, setState(store.RunQueued))
		setRun(t, st, second, run, setState(store.RunActive))
		setRun(t, st, first, run, finish(store.RunComplete, ""))
	}
	startSender(t, first)
	startSender(t, second)

	waitFor(t, 10*time.Second, "every row delivered", func() bool {
		var left int64
		err := st.DB.WithContext(t.Context()).Model(&store.CommitStatus{}).Where("sent_version < version").Count(&left).Error
		return err == nil && left == 0
	})
	_, posts := poster.snapshot()
	perSHA := map[string]int{}
	for _, p := range posts {
		perSHA[p.SHA]++
		if p.Opts.State != forge.StateSuccess {
			t.Errorf("got %s %q for %s, want only the final success", p.Opts.State, p.Opts.Description, p.SHA)
		}
	}
	if len(perSHA) != commits {
		t.Errorf("got posts for %d commits, want %d", len(perSHA), commits)
	}
	for sha, n := range perSHA {
		if n != 1 {
			t.Errorf("commit %s: got %d posts, want exactly 1", sha, n)
		}
	}
}

func TestOutboxLatePendingOnPostgres(t *testing.T) {
	st, repo := newPostgresStore(t)
	poster := &recordingPoster{}
	o := New(st, poster, testOptions())
	run := createRun(t, st, repo, testSHA)

	setRun(t, st, o, run, finish(store.RunFailed, store.FailurePipeline))
	setRun(t, st, o, run, setState(store.RunActive))
	startSender(t, o)

	waitFor(t, 5*time.Second, "the final status", func() bool { return getRow(t, st, "octavo").SentVersion == 1 })
	_, posts := poster.snapshot()
	if len(posts) != 1 || posts[0].Opts.State != forge.StateFailure {
		t.Errorf("got posts %+v, want only the failure", posts)
	}
}
