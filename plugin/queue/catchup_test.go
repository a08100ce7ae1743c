package queue

import (
	"context"
	"errors"
	"testing"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/workspace/gittest"
)

// fakeForge serves branch lists from real repositories' heads.
type fakeForge struct {
	branches map[string][]Branch
	repos    map[string]RepoInfo
	fail     map[string]bool
}

func (f fakeForge) ListBranches(_ context.Context, fullName string) ([]Branch, error) {
	if f.fail[fullName] {
		return nil, errors.New("forge unavailable")
	}
	return f.branches[fullName], nil
}

func (f fakeForge) GetRepo(_ context.Context, fullName string) (RepoInfo, error) {
	info, ok := f.repos[fullName]
	if !ok {
		return RepoInfo{}, errors.New("not found")
	}
	return info, nil
}

func TestCatchUpQueuesUnbuiltHeads(t *testing.T) {
	h := newHarness(t, fakeRunner(t))
	built := h.push("main", events("", runSuccess))
	mainSHA := gittest.Git(t, h.repo.Dir, "rev-parse", "HEAD")
	h.push("dev", events("", runSuccess))
	devSHA := h.repo.Commit("pushed while down", nil)
	h.srv.Publish(t, h.repo, repoName)

	f := fakeForge{
		branches: map[string][]Branch{
			repoName:      {{Name: "main", SHA: mainSHA}, {Name: "dev", SHA: devSHA}, {Name: "new", SHA: devSHA}},
			"acme/listed": {{Name: "main", SHA: devSHA}},
		},
		repos: map[string]RepoInfo{"acme/listed": {Owner: "acme", Name: "listed", FullName: "acme/listed", CloneURL: h.cloneURL}},
		fail:  map[string]bool{},
	}
	if err := h.q.CatchUp(t.Context(), f, []string{"acme/listed"}); err != nil {
		t.Fatal(err)
	}

	var runs []store.Run
	h.st.DB.Preload("Repo").Where("id > ?", built.RunID+1).Order("id").Find(&runs)
	got := map[string]string{}
	for _, r := range runs {
		got[r.Repo.FullName+" "+r.Ref] = r.SHA
	}
	want := map[string]string{
		repoName + " refs/heads/dev":  devSHA,
		repoName + " refs/heads/new":  devSHA,
		"acme/listed refs/heads/main": devSHA,
	}
	if len(got) != len(want) {
		t.Errorf("catch-up queued %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("catch-up run for %s = %q, want %s", k, got[k], v)
		}
	}

	// A second catch-up finds every head built or queued.
	if err := h.q.CatchUp(t.Context(), f, []string{"acme/listed"}); err != nil {
		t.Fatal(err)
	}
	var n int64
	h.st.DB.Model(&store.Run{}).Count(&n)
	if n != int64(2+len(want)) {
		t.Errorf("%d runs after a second catch-up, want %d", n, 2+len(want))
	}

	f.fail[repoName] = true
	if err := h.q.CatchUp(t.Context(), f, nil); err == nil {
		t.Error("CatchUp with a failing forge returned nil, want the error")
	}
}

func TestCatchUpSkipsHeadsWithSkipCIMarker(t *testing.T) {
	h := newHarness(t, fakeRunner(t))
	built := h.push("main", events("", runSuccess))
	skippedSHA := h.repo.Commit("docs only [skip ci]", nil)
	h.srv.Publish(t, h.repo, repoName)

	f := fakeForge{
		branches: map[string][]Branch{
			repoName: {
				{Name: "main", SHA: skippedSHA, Message: "docs only [skip ci]\n"},
				{Name: "other", SHA: skippedSHA, Message: "Docs only [CI SKIP]\n"},
			},
		},
		fail: map[string]bool{},
	}
	if err := h.q.CatchUp(t.Context(), f, nil); err != nil {
		t.Fatal(err)
	}

	var later []store.Run
	h.st.DB.Where("id > ?", built.RunID).Find(&later)
	if len(later) != 0 {
		t.Errorf("catch-up queued %d runs for heads marked skip ci, want 0", len(later))
	}
}
