package status

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/forge"
	"github.com/octavo-ci/octavo/plugin/internal/giteatest"
	"github.com/octavo-ci/octavo/plugin/store"
)

func TestMain(m *testing.M) { os.Exit(giteatest.Main(m)) }

// TestOutboxOnGitea delivers a run's statuses to a real Gitea and reads
// them back: the newest state only, with the link to the run page.
func TestOutboxOnGitea(t *testing.T) {
	if testing.Short() {
		t.Skip("real Gitea test skipped with -short")
	}
	inst := giteatest.Shared(t)
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	giteaRepo, err := inst.CreateRepo(t.Context(), "status-"+hex.EncodeToString(suffix))
	if err != nil {
		t.Fatal(err)
	}
	sha, err := inst.Commit(t.Context(), giteaRepo.FullName, "main")
	if err != nil {
		t.Fatal(err)
	}

	st, _ := newTestStore(t)
	repo := store.Repo{FullName: giteaRepo.FullName, Owner: "o", Name: "n"}
	if err := st.DB.WithContext(t.Context()).Create(&repo).Error; err != nil {
		t.Fatal(err)
	}
	o := New(st, forge.New(inst.URL, inst.Token, forge.KindGitea, nil), testOptions())
	run := createRun(t, st, repo, sha)
	setRun(t, st, o, run, setState(store.RunActive))
	setRun(t, st, o, run, func(r *store.Run) {
		r.State, r.FailureKind, r.Error = store.RunFailed, store.FailureTimedOut, "stopped after 1h0m0s"
	})
	startSender(t, o)

	waitFor(t, 10*time.Second, "the status on Gitea", func() bool {
		return getRow(t, st, "octavo").SentVersion == 2
	})
	combined, err := inst.CombinedStatus(t.Context(), giteaRepo.FullName, sha)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := combined.Context("octavo")
	if !ok {
		t.Fatalf("got contexts %+v, want octavo", combined.Statuses)
	}
	if got.State != "error" || got.Description != "Timed out: stopped after 1h0m0s" {
		t.Errorf("got %s %q, want error \"Timed out: stopped after 1h0m0s\"", got.State, got.Description)
	}
	if want := "http://127.0.0.1:8080/ci/runs/1"; got.TargetURL != want {
		t.Errorf("got target URL %q, want %q", got.TargetURL, want)
	}
	history, err := inst.Statuses(t.Context(), giteaRepo.FullName, sha)
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != 1 {
		t.Errorf("got %d statuses in Gitea's history %+v, want only the newest state posted", len(history), history)
	}
}
