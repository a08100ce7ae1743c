package workspace

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/workspace/gittest"
)

func TestMaterialise(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format+" repository", func(t *testing.T) {
			repo := gittest.NewRepo(t, format)
			first := repo.Commit("first", map[string]string{"README": "hi\n"})
			srv := gittest.Serve(t, t.TempDir(), testToken)
			cloneURL := srv.Publish(t, repo, "acme/app")
			m := New(t.TempDir(), mustURL(t, srv.URL+"/"), testToken)

			skipped := filepath.Join(t.TempDir(), "skipped")
			has, err := m.Materialise(t.Context(), "acme/app", cloneURL, first, PipelineFile, skipped)
			if err != nil || has {
				t.Errorf("Materialise(commit without pipeline) = %v, %v, want false, nil", has, err)
			}
			if _, err := os.Stat(skipped); !os.IsNotExist(err) {
				t.Errorf("Materialise of a commit without pipeline left %s (stat: %v), want no folder", skipped, err)
			}

			second := repo.Commit("add pipeline", map[string]string{PipelineFile: "job()\n"})
			srv.Publish(t, repo, "acme/app")
			dir := filepath.Join(t.TempDir(), "src")
			has, err = m.Materialise(t.Context(), "acme/app", cloneURL, second, PipelineFile, dir)
			if err != nil || !has {
				t.Fatalf("Materialise(pushed commit) = %v, %v, want true, nil", has, err)
			}
			checkCheckout(t, m, dir, second)
			if got := srv.Unauthorized.Load(); got != 0 {
				t.Errorf("server rejected %d requests for a missing token, want 0", got)
			}
		})
	}
}

// checkCheckout checks that dir is a checkout of sha with its own refs and
// with objects borrowed from the mirror of acme/app.
func checkCheckout(t *testing.T, m *Manager, dir, sha string) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(dir, PipelineFile))
	if err != nil || string(got) != "job()\n" {
		t.Errorf("checked out pipeline = %q, %v, want job()", got, err)
	}
	if head := gittest.Git(t, dir, "rev-parse", "HEAD"); head != sha {
		t.Errorf("checkout HEAD = %s, want %s", head, sha)
	}
	if branch := gittest.Git(t, dir, "rev-parse", "--abbrev-ref", "HEAD"); branch != "HEAD" {
		t.Errorf("checkout is on branch %q, want a detached HEAD", branch)
	}
	if status := gittest.Git(t, dir, "status", "--porcelain"); status != "" {
		t.Errorf("checkout status = %q, want a clean working tree", status)
	}
	alternates, err := os.ReadFile(filepath.Join(dir, ".git", "objects", "info", "alternates"))
	if err != nil || !strings.Contains(string(alternates), m.MirrorDir("acme/app")) {
		t.Errorf("checkout alternates = %q, %v, want the mirror's objects", alternates, err)
	}

	gittest.Git(t, dir, "tag", "pipeline-made")
	if tags := gittest.Git(t, m.MirrorDir("acme/app"), "tag", "--list", "pipeline-made"); tags != "" {
		t.Errorf("a tag made in the checkout shows in the mirror as %q, want the mirror's refs untouched", tags)
	}
}

func TestMaterialiseMissingCommit(t *testing.T) {
	_, _, m, cloneURL, _ := serveRepo(t, map[string]string{PipelineFile: "job()\n"})

	const missing = "0123456789abcdef0123456789abcdef01234567"
	dir := filepath.Join(t.TempDir(), "src")
	has, err := m.Materialise(t.Context(), "acme/app", cloneURL, missing, PipelineFile, dir)
	if err == nil || has {
		t.Fatalf("Materialise(missing commit) = %v, %v, want false and an error", has, err)
	}
	if !strings.Contains(err.Error(), "not in the mirror") {
		t.Errorf("error %q does not say that the commit is not in the mirror", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Materialise of a missing commit left %s (stat: %v), want no folder", dir, err)
	}

	has, err = m.Lookup(t.Context(), "acme/app", cloneURL, missing, PipelineFile)
	if err == nil || has {
		t.Errorf("Lookup(missing commit) = %v, %v, want false and an error", has, err)
	}
}

// TestFetchedCommitNeedsNoRequests checks that a commit already in
// the mirror costs no fetch, so the worker never waits for the network
// after the preparer fetched.
func TestFetchedCommitNeedsNoRequests(t *testing.T) {
	_, srv, m, cloneURL, sha := serveRepo(t, map[string]string{PipelineFile: "job()\n"})
	if err := m.Fetch(t.Context(), "acme/app", cloneURL, sha); err != nil {
		t.Fatalf("Fetch: %v", err)
	}

	before := srv.Requests.Load()
	has, err := m.Lookup(t.Context(), "acme/app", cloneURL, sha, PipelineFile)
	if err != nil || !has {
		t.Errorf("Lookup = %v, %v, want true, nil", has, err)
	}
	dir := filepath.Join(t.TempDir(), "src")
	has, err = m.Materialise(t.Context(), "acme/app", cloneURL, sha, PipelineFile, dir)
	if err != nil || !has {
		t.Fatalf("Materialise = %v, %v, want true, nil", has, err)
	}
	checkCheckout(t, m, dir, sha)
	if got := srv.Requests.Load() - before; got != 0 {
		t.Errorf("Lookup and Materialise of a fetched commit made %d requests, want none", got)
	}
}

// TestConcurrentLookupsFetchOnce runs the preparer's and the worker's calls
// for one new commit at the same time. The one that waits for the other's
// fetch must find the commit instead of fetching again.
func TestConcurrentLookupsFetchOnce(t *testing.T) {
	repo, srv, m, cloneURL, _ := serveRepo(t, map[string]string{PipelineFile: "job()\n"})
	if err := m.Fetch(t.Context(), "acme/app", cloneURL, ""); err != nil {
		t.Fatalf("first Fetch: %v", err)
	}

	// A lone fetch of one new commit sets how many requests a fetch takes.
	lone := repo.Commit("lone", map[string]string{"counter": "1\n"})
	srv.Publish(t, repo, "acme/app")
	before := srv.Requests.Load()
	if err := m.Fetch(t.Context(), "acme/app", cloneURL, lone); err != nil {
		t.Fatalf("lone Fetch: %v", err)
	}
	perFetch := srv.Requests.Load() - before

	sha := repo.Commit("pushed", map[string]string{"counter": "2\n"})
	srv.Publish(t, repo, "acme/app")
	before = srv.Requests.Load()
	dir := filepath.Join(t.TempDir(), "src")
	var wg sync.WaitGroup
	var lookupHas, materialiseHas bool
	var lookupErr, materialiseErr error
	wg.Go(func() {
		lookupHas, lookupErr = m.Lookup(t.Context(), "acme/app", cloneURL, sha, PipelineFile)
	})
	wg.Go(func() {
		materialiseHas, materialiseErr = m.Materialise(t.Context(), "acme/app", cloneURL, sha, PipelineFile, dir)
	})
	wg.Wait()

	if lookupErr != nil || !lookupHas {
		t.Errorf("Lookup = %v, %v, want true, nil", lookupHas, lookupErr)
	}
	if materialiseErr != nil || !materialiseHas {
		t.Fatalf("Materialise = %v, %v, want true, nil", materialiseHas, materialiseErr)
	}
	checkCheckout(t, m, dir, sha)
	if got := srv.Requests.Load() - before; got != perFetch {
		t.Errorf("concurrent Lookup and Materialise made %d requests, want %d, as one fetch does", got, perFetch)
	}
}

// TestFetchFollowsNewCloneURL checks that a mirror fetched once from one
// URL fetches from the new one after the repository moved, although the
// Manager sets the remote URL only when it changes.
func TestFetchFollowsNewCloneURL(t *testing.T) {
	repo, srv, m, oldURL, first := serveRepo(t, map[string]string{PipelineFile: "job()\n"})
	if err := m.Fetch(t.Context(), "acme/app", oldURL, first); err != nil {
		t.Fatalf("Fetch from the old URL: %v", err)
	}

	second := repo.Commit("second", map[string]string{"counter": "1\n"})
	newURL := srv.Publish(t, repo, "acme/renamed")
	if err := m.Fetch(t.Context(), "acme/app", newURL, second); err != nil {
		t.Fatalf("Fetch from the new URL: %v", err)
	}
	if got := gittest.Git(t, m.MirrorDir("acme/app"), "config", "remote.origin.url"); got != newURL {
		t.Errorf("mirror remote URL = %s, want %s", got, newURL)
	}
	has, err := m.HasFile(t.Context(), "acme/app", second, PipelineFile)
	if err != nil || !has {
		t.Errorf("HasFile(commit from the new URL) = %v, %v, want true, nil", has, err)
	}
}

func TestHasFileRejectsInvalidPaths(t *testing.T) {
	m := New(t.TempDir(), nil, "")
	const sha = "0123456789abcdef0123456789abcdef01234567"
	for _, path := range []string{"", "a\nb", "a\r"} {
		if _, err := m.HasFile(t.Context(), "acme/app", sha, path); err == nil || !strings.Contains(err.Error(), "invalid path") {
			t.Errorf("HasFile(%q) error = %v, want an invalid path error", path, err)
		}
	}
}

// TestMaterialiseAfterUnrelatedFetch covers a caller that waits for
// another caller's fetch which does not bring its commit. The clone it
// starts during that wait has the refs from before its own fetch, so it
// must be discarded, or else the checkout's origin/main misses the pushed
// commit.
func TestMaterialiseAfterUnrelatedFetch(t *testing.T) {
	repo, srv, m, cloneURL, _ := serveRepo(t, map[string]string{PipelineFile: "job()\n"})
	if err := m.Fetch(t.Context(), "acme/app", cloneURL, ""); err != nil {
		t.Fatalf("first Fetch: %v", err)
	}
	sha := repo.Commit("pushed", map[string]string{"counter": "1\n"})
	srv.Publish(t, repo, "acme/app")

	// A git wrapper creates the file looked at the first lookup, so the
	// test can see that Materialise has looked and now waits for the lock.
	looked := filepath.Join(t.TempDir(), "looked")
	wrapper := filepath.Join(t.TempDir(), "git")
	script := "#!/bin/sh\ncase \" $* \" in *\" cat-file \"*) touch '" + looked + "';; esac\nexec git \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	m.git = wrapper

	st := m.mirrorState("acme/app")
	st.mu.Lock()
	dir := filepath.Join(t.TempDir(), "src")
	type result struct {
		has bool
		err error
	}
	done := make(chan result, 1)
	go func() {
		has, err := m.Materialise(t.Context(), "acme/app", cloneURL, sha, PipelineFile, dir)
		done <- result{has, err}
	}()

	deadline := time.Now().Add(10 * time.Second)
	for _, err := os.Stat(looked); err != nil; _, err = os.Stat(looked) {
		if time.Now().After(deadline) {
			st.mu.Unlock()
			t.Fatal("Materialise made no lookup within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Stand in for another caller's fetch that did not bring sha.
	st.fetches.Add(1)
	st.mu.Unlock()

	got := <-done
	if got.err != nil || !got.has {
		t.Fatalf("Materialise = %v, %v, want true, nil", got.has, got.err)
	}
	checkCheckout(t, m, dir, sha)
	if main := gittest.Git(t, dir, "rev-parse", "refs/remotes/origin/main"); main != sha {
		t.Errorf("checkout origin/main = %s, want the pushed commit %s", main, sha)
	}
}

// TestBackgroundCloneMethodsRepeat calls wait and discard of a background
// clone more than once, as Materialise's error paths can: neither may
// block once the clone has finished.
func TestBackgroundCloneMethodsRepeat(t *testing.T) {
	_, _, m, cloneURL, sha := serveRepo(t, map[string]string{PipelineFile: "job()\n"})
	if err := m.Fetch(t.Context(), "acme/app", cloneURL, sha); err != nil {
		t.Fatalf("Fetch: %v", err)
	}

	dir := filepath.Join(t.TempDir(), "src")
	c := m.startClone(t.Context(), "acme/app", dir)
	done := make(chan error, 1)
	go func() {
		err := errors.Join(c.wait(), c.wait(), c.discard(), c.discard())
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("wait, wait, discard, discard = %v, want no error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a repeated wait or discard of a finished clone blocked")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("discard left %s (stat: %v), want no folder", dir, err)
	}
}

// TestLookupWantsAFile looks up a pipeline path that is a folder at the
// commit: a folder is no pipeline file.
func TestLookupWantsAFile(t *testing.T) {
	_, _, m, cloneURL, sha := serveRepo(t, map[string]string{PipelineFile + "/inside": "not a pipeline\n"})

	has, err := m.Lookup(t.Context(), "acme/app", cloneURL, sha, PipelineFile)
	if err != nil || has {
		t.Errorf("Lookup(%s, a folder) = %v, %v, want false, nil", PipelineFile, has, err)
	}
}

// serveRepo commits files as "first" to a new SHA-1 repository, serves it
// over HTTP as acme/app, and returns it with its server, a Manager that
// fetches from it, its clone URL and the commit.
func serveRepo(t *testing.T, files map[string]string) (repo *gittest.Repo, srv *gittest.Server, m *Manager, cloneURL, sha string) {
	t.Helper()
	repo = gittest.NewRepo(t, "sha1")
	sha = repo.Commit("first", files)
	srv = gittest.Serve(t, t.TempDir(), "")
	cloneURL = srv.Publish(t, repo, "acme/app")
	return repo, srv, New(t.TempDir(), mustURL(t, srv.URL+"/"), ""), cloneURL, sha
}
