package workspace

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/octavo-ci/octavo/plugin/workspace/gittest"
)

// TestTokenGoesOnlyToTheForge checks that a clone URL on another origin
// than the forge gets no token. The token once went to whatever host a
// delivery's clone_url named, so one forged or misconfigured clone URL
// handed the forge token to a stranger.
func TestTokenGoesOnlyToTheForge(t *testing.T) {
	repo := gittest.NewRepo(t, "sha1")
	sha := repo.Commit("first", nil)
	forgeSrv := gittest.Serve(t, t.TempDir(), testToken)
	forgeSrv.Publish(t, repo, "acme/app")
	other := gittest.Serve(t, t.TempDir(), testToken)
	otherURL := other.Publish(t, repo, "acme/app")

	m := New(t.TempDir(), mustURL(t, forgeSrv.URL+"/"), testToken)
	err := m.Fetch(t.Context(), "acme/app", otherURL, sha)
	if err == nil {
		t.Error("Fetch from a foreign host that demands a token succeeded, want an error because no token was sent")
	} else if !strings.Contains(err.Error(), "forge token was not sent") {
		t.Errorf("error %q does not say that the token was not sent", err)
	}
	if got := other.Unauthorized.Load(); got == 0 || got != other.Requests.Load() {
		t.Errorf("foreign host rejected %d of %d requests, want all of them (none carried the token)", got, other.Requests.Load())
	}

	forgeURL := forgeSrv.URL + "/acme/app.git"
	if err := m.Fetch(t.Context(), "acme/app", forgeURL, sha); err != nil {
		t.Fatalf("Fetch from the forge: %v", err)
	}
	if got := forgeSrv.Unauthorized.Load(); got != 0 {
		t.Errorf("forge rejected %d requests, want 0", got)
	}

	noForge := New(t.TempDir(), nil, testToken)
	before := forgeSrv.Unauthorized.Load()
	if err := noForge.Fetch(t.Context(), "acme/app", forgeURL, sha); err == nil {
		t.Error("Fetch without a forge URL sent the token, want no token and an error")
	}
	if forgeSrv.Unauthorized.Load() == before {
		t.Error("server saw no tokenless request from a manager without a forge URL")
	}
}

// TestFetchRejectsUnsafeArguments checks the values that reach git's
// argv and the mirror path. Without a token, Fetch once cloned file://
// URLs and local paths of the sidecar's own machine, and a full name of
// "../x" put the mirror outside the data folder.
func TestFetchRejectsUnsafeArguments(t *testing.T) {
	repo := gittest.NewRepo(t, "sha1")
	sha := repo.Commit("first", nil)
	local := filepath.Join(t.TempDir(), "secret.git")
	gittest.Git(t, repo.Dir, "clone", "--quiet", "--bare", repo.Dir, local)
	srv := gittest.Serve(t, t.TempDir(), "")
	good := srv.Publish(t, repo, "acme/app")

	tests := []struct {
		name, fullName, cloneURL, sha string
	}{
		{"file URL", "acme/app", "file://" + local, sha},
		{"local path", "acme/app", local, sha},
		{"option as URL", "acme/app", "--upload-pack=touch x", sha},
		{"traversal in the name", "../x", good, sha},
		{"three-part name", "a/b/c", good, sha},
		{"option as commit", "acme/app", good, "--output=x"},
		{"revision expression as commit", "acme/app", good, "HEAD~1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := t.TempDir()
			m := New(data, nil, "")
			if err := m.Fetch(t.Context(), tt.fullName, tt.cloneURL, tt.sha); err == nil {
				t.Errorf("Fetch(%q, %q, %q) succeeded, want an error", tt.fullName, tt.cloneURL, tt.sha)
			}
			entries, _ := os.ReadDir(filepath.Dir(data))
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".git") || strings.HasSuffix(e.Name(), ".tmp") {
					t.Errorf("Fetch left %s beside the data folder", e.Name())
				}
			}
		})
	}
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
