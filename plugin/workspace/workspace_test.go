package workspace

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/octavo-ci/octavo/plugin/workspace/gittest"
)

const testToken = "tok-3f9a1c"

func TestFetchAndCheckout(t *testing.T) {
	for _, format := range []string{"sha1", "sha256"} {
		t.Run(format+" repository", func(t *testing.T) {
			repo := gittest.NewRepo(t, format)
			first := repo.Commit("first", map[string]string{"README": "hi\n"})
			srv := gittest.Serve(t, t.TempDir(), testToken)
			cloneURL := srv.Publish(t, repo, "acme/app")

			m := New(t.TempDir(), mustURL(t, srv.URL+"/"), testToken)
			if err := m.Fetch(t.Context(), "acme/app", cloneURL, first); err != nil {
				t.Fatalf("first Fetch: %v", err)
			}
			has, err := m.HasFile(t.Context(), "acme/app", first, PipelineFile)
			if err != nil || has {
				t.Errorf("HasFile(first) = %v, %v, want false, nil", has, err)
			}

			second := repo.Commit("add pipeline", map[string]string{PipelineFile: "job()\n"})
			srv.Publish(t, repo, "acme/app")
			if err := m.Fetch(t.Context(), "acme/app", cloneURL, second); err != nil {
				t.Fatalf("incremental Fetch: %v", err)
			}
			has, err = m.HasFile(t.Context(), "acme/app", second, PipelineFile)
			if err != nil || !has {
				t.Errorf("HasFile(second) = %v, %v, want true, nil", has, err)
			}

			before := srv.Requests.Load()
			if err := m.Fetch(t.Context(), "acme/app", cloneURL, second); err != nil {
				t.Fatal(err)
			}
			if got := srv.Requests.Load(); got != before {
				t.Errorf("Fetch of a known commit made %d requests, want none", got-before)
			}

			dir := filepath.Join(m.RunDir(1), "src")
			if err := m.Checkout(t.Context(), "acme/app", second, dir); err != nil {
				t.Fatalf("Checkout: %v", err)
			}
			got, err := os.ReadFile(filepath.Join(dir, PipelineFile))
			if err != nil || string(got) != "job()\n" {
				t.Errorf("checked out pipeline = %q, %v, want job()", got, err)
			}
			if head := gittest.Git(t, dir, "rev-parse", "HEAD"); head != second {
				t.Errorf("checkout HEAD = %s, want %s", head, second)
			}
			if srv.Unauthorized.Load() != 0 {
				t.Errorf("server rejected %d requests for a missing token, want 0", srv.Unauthorized.Load())
			}
		})
	}
}

func TestFetchWrongTokenFailsWithoutLeaking(t *testing.T) {
	repo := gittest.NewRepo(t, "sha1")
	sha := repo.Commit("first", nil)
	srv := gittest.Serve(t, t.TempDir(), testToken)
	cloneURL := srv.Publish(t, repo, "acme/app")

	const wrong = "wrong-token-77"
	m := New(t.TempDir(), mustURL(t, srv.URL+"/"), wrong)
	err := m.Fetch(t.Context(), "acme/app", cloneURL, sha)
	if err == nil {
		t.Fatal("Fetch with a wrong token succeeded, want an error")
	}
	if strings.Contains(err.Error(), wrong) {
		t.Errorf("error %q contains the token", err)
	}
	if srv.Unauthorized.Load() == 0 {
		t.Error("server saw no rejected request, want the wrong token to reach it as a header")
	}
	if _, statErr := os.Stat(m.MirrorDir("acme/app")); statErr == nil {
		t.Error("a failed first clone left a mirror behind")
	}
}

// TestTokenIsScopedToTheCloneOrigin checks the header key, because a
// token sent to any host git is redirected to would leak it.
func TestTokenIsScopedToTheCloneOrigin(t *testing.T) {
	got, err := headerKey("https://git.example.com:3000/acme/app.git")
	if err != nil {
		t.Fatal(err)
	}
	if want := "http.https://git.example.com:3000/.extraHeader"; got != want {
		t.Errorf("headerKey = %q, want %q", got, want)
	}
}
