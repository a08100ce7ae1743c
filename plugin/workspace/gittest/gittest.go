// Package gittest builds real git repositories for tests and serves them
// over smart HTTP with git http-backend on loopback.
package gittest

import (
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// Repo is a non-bare repository with a working tree, created in a
// temporary folder.
type Repo struct {
	t   testing.TB
	Dir string
}

// Git runs git in dir with a fixed identity and returns its trimmed
// output; the test fails on a non-zero exit.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// NewRepo creates a repository on branch main; objectFormat is "sha1" or
// "sha256".
func NewRepo(t testing.TB, objectFormat string) *Repo {
	t.Helper()
	dir := t.TempDir()
	Git(t, dir, "init", "--quiet", "--initial-branch=main", "--object-format="+objectFormat)
	return &Repo{t: t, Dir: dir}
}

// Commit writes files (path to content; an empty content deletes the
// file), commits them with message and returns the commit id.
func (r *Repo) Commit(message string, files map[string]string) string {
	r.t.Helper()
	for path, content := range files {
		full := filepath.Join(r.Dir, filepath.FromSlash(path))
		if content == "" {
			Git(r.t, r.Dir, "rm", "--quiet", "--ignore-unmatch", path)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
		Git(r.t, r.Dir, "add", path)
	}
	Git(r.t, r.Dir, "commit", "--quiet", "--allow-empty", "-m", message)
	return Git(r.t, r.Dir, "rev-parse", "HEAD")
}

// Server serves the repositories below Root over smart HTTP at
// URL/OWNER/NAME.git. When Token is set, requests must carry the header
// "Authorization: token TOKEN" or get 401.
type Server struct {
	URL   string
	Root  string
	Token string
	// Requests counts the HTTP requests git made.
	Requests atomic.Int64
	// Unauthorized counts the requests rejected for a missing or wrong token.
	Unauthorized atomic.Int64
}

// Serve starts a git server for the folder root on 127.0.0.1; it stops
// when the test ends.
func Serve(t testing.TB, root, token string) *Server {
	t.Helper()
	backend, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("find git exec path: %v", err)
	}
	s := &Server{Root: root, Token: token}
	h := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(backend)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Requests.Add(1)
		if token != "" && r.Header.Get("Authorization") != "token "+token {
			s.Unauthorized.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Publish pushes every branch and tag of repo to a bare repository
// ROOT/OWNER/NAME.git (created on first use) and returns its clone URL.
func (s *Server) Publish(t testing.TB, repo *Repo, fullName string) string {
	t.Helper()
	bare := filepath.Join(s.Root, filepath.FromSlash(fullName)+".git")
	if _, err := os.Stat(bare); err != nil {
		format := Git(t, repo.Dir, "rev-parse", "--show-object-format")
		if err := os.MkdirAll(bare, 0o755); err != nil {
			t.Fatal(err)
		}
		Git(t, bare, "init", "--quiet", "--bare", "--object-format="+format)
	}
	Git(t, repo.Dir, "push", "--quiet", "--force", "--mirror", bare)
	return s.URL + "/" + fullName + ".git"
}
