// Package workspace keeps one bare mirror per repository under the data
// folder, fetched incrementally from the forge, and materialises a pushed
// commit into a per-run folder. The forge token reaches git only through
// environment variables, never through argv, a URL or a log line, and only
// for clone URLs on the forge's own origin.
package workspace

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// PipelineFile is the path of the pipeline inside a repository.
const PipelineFile = ".octavo/ci.star"

// maxGitOutput bounds the git output kept for an error message.
const maxGitOutput = 2048

// Manager owns the mirrors and run folders under one data folder. Its
// methods are safe for concurrent use; fetches of one repository are
// serialised.
type Manager struct {
	root  string
	forge *url.URL // the only origin that receives the token; nil for none
	token string
	git   string

	mu      sync.Mutex
	mirrors map[string]*mirrorState
}

// mirrorState is the state a Manager keeps for one repository's mirror.
type mirrorState struct {
	// mu serialises the clone and the fetches of the mirror.
	mu sync.Mutex
	// origin is the URL that this Manager last cloned the mirror from or
	// set as its remote, so an unchanged URL costs no git process. It is
	// "" until then, and guarded by mu.
	// NOTE: a URL changed in the mirror's config by hand stays in use
	// until the process restarts or the clone URL changes.
	origin string
	// fetches counts completed clones and fetches. A caller that found a
	// commit missing before it took mu compares the count to learn whether
	// the mirror changed while it waited.
	fetches atomic.Uint64
}

// New returns a Manager that keeps mirrors under dataDir/mirrors and run
// folders under dataDir/runs. token may be empty for public repositories.
// It is sent only to clone URLs with forgeURL's scheme and host, so with a
// nil forgeURL it is never sent.
func New(dataDir string, forgeURL *url.URL, token string) *Manager {
	return &Manager{root: dataDir, forge: forgeURL, token: token, git: "git", mirrors: map[string]*mirrorState{}}
}

// namePattern matches one part of OWNER/NAME as Gitea and Forgejo allow
// it; commitPattern a full SHA-1 or SHA-256 object id.
var (
	namePattern   = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	commitPattern = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
)

// checkArgs rejects a full name that could leave the mirrors folder and a
// commit id that git could read as an option or a revision expression. It
// also rejects a clone URL that is not http or https, because git would
// read local paths and file:// remotes. Empty sha and cloneURL pass.
func checkArgs(fullName, cloneURL, sha string) error {
	owner, name, ok := strings.Cut(fullName, "/")
	for _, part := range []string{owner, name} {
		if !ok || !namePattern.MatchString(part) || part == "." || part == ".." {
			return fmt.Errorf("invalid repository name %q; want OWNER/NAME of letters, digits, '-', '_' and '.'", fullName)
		}
	}
	if sha != "" && !commitPattern.MatchString(sha) {
		return fmt.Errorf("invalid commit id %q for %s; want 40 or 64 lowercase hex digits", sha, fullName)
	}
	if cloneURL != "" {
		u, err := url.Parse(cloneURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("clone URL %q of %s is not an absolute http or https URL", cloneURL, fullName)
		}
	}
	return nil
}

// MirrorDir returns the bare mirror folder of "owner/name".
func (m *Manager) MirrorDir(fullName string) string {
	return filepath.Join(m.root, "mirrors", filepath.FromSlash(fullName)+".git")
}

// RunDir returns the folder of one run: the checkout lives in its "src"
// subfolder, the files handed to the runner beside it.
func (m *Manager) RunDir(runID uint) string {
	return filepath.Join(m.root, "runs", strconv.FormatUint(uint64(runID), 10))
}

func (m *Manager) mirrorState(fullName string) *mirrorState {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.mirrors[fullName]
	if !ok {
		st = &mirrorState{}
		m.mirrors[fullName] = st
	}
	return st
}

// Fetch makes sure the mirror of fullName holds the commit sha: it clones
// the mirror on first use and fetches when the commit is missing. With an
// empty sha it always fetches. Object format (SHA-1 or SHA-256) follows
// the remote.
func (m *Manager) Fetch(ctx context.Context, fullName, cloneURL, sha string) error {
	_, _, err := m.fetch(ctx, fullName, cloneURL, sha, "", nil)
	return err
}

// fetch is [Manager.Fetch] that also looks up path at sha while it checks
// for the commit. It returns that lookup with current true when no clone
// or fetch followed it. With current false the caller must look again.
// When another caller's fetch ends while this one waits for the lock,
// fetch calls refreshed, unless it is nil, just before it looks again.
func (m *Manager) fetch(ctx context.Context, fullName, cloneURL, sha, path string, refreshed func()) (found presence, current bool, err error) {
	if cloneURL == "" {
		return presence{}, false, fmt.Errorf("fetch %s: repository has no clone URL", fullName)
	}
	if err := checkArgs(fullName, cloneURL, sha); err != nil {
		return presence{}, false, fmt.Errorf("fetch: %w", err)
	}
	dir := m.MirrorDir(fullName)
	st := m.mirrorState(fullName)

	// Look before taking the lock, so a commit already in the mirror
	// does not wait for a fetch of another commit of the same repository.
	seen := st.fetches.Load()
	if sha != "" && mirrorExists(dir) {
		found, err := m.lookup(ctx, dir, sha, path)
		if err != nil {
			return presence{}, false, fmt.Errorf("look up commit %s in the mirror of %s: %w", sha, fullName, err)
		}
		if found.commit {
			return found, true, nil
		}
	}

	st.mu.Lock()
	defer st.mu.Unlock()
	if !mirrorExists(dir) {
		if err := m.cloneMirror(ctx, fullName, cloneURL, dir); err != nil {
			return presence{}, false, m.offForgeHint(cloneURL, err)
		}
		st.origin = cloneURL
		st.fetches.Add(1)
		return presence{}, false, nil
	}
	if sha != "" && st.fetches.Load() != seen {
		// Another caller fetched while this one waited for the lock.
		if refreshed != nil {
			refreshed()
		}
		found, err := m.lookup(ctx, dir, sha, path)
		if err != nil {
			return presence{}, false, fmt.Errorf("look up commit %s in the mirror of %s: %w", sha, fullName, err)
		}
		if found.commit {
			return found, true, nil
		}
	}

	if st.origin != cloneURL {
		if _, err := m.run(ctx, cloneURL, "--git-dir", dir, "remote", "set-url", "--", "origin", cloneURL); err != nil {
			return presence{}, false, fmt.Errorf("set mirror remote of %s: %w", fullName, err)
		}
		st.origin = cloneURL
	}
	if _, err := m.run(ctx, cloneURL, "--git-dir", dir, "fetch", "--quiet", "--prune", "--force", "origin"); err != nil {
		return presence{}, false, m.offForgeHint(cloneURL, fmt.Errorf("fetch mirror of %s: %w", fullName, err))
	}
	st.fetches.Add(1)
	return presence{}, false, nil
}

// mirrorExists reports whether dir is a mirror. A mirror appears by a
// rename once its clone is complete, so the check needs no lock.
func mirrorExists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "HEAD"))
	return err == nil
}

func (m *Manager) cloneMirror(ctx context.Context, fullName, cloneURL, dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o750); err != nil {
		return fmt.Errorf("create mirror folder of %s: %w", fullName, err)
	}
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove stale mirror of %s: %w", fullName, err)
	}
	if _, err := m.run(ctx, cloneURL, "clone", "--quiet", "--mirror", "--template=", "--", cloneURL, tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("clone mirror of %s: %w", fullName, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("move mirror of %s in place: %w", fullName, err)
	}
	return nil
}

// run executes git with args. When remote is on the forge's origin and a
// token is configured, the token goes to git as an http.extraHeader scoped
// to that origin, through GIT_CONFIG_COUNT and friends, so it never shows
// in argv. A process's environment is readable only by its own user and
// root.
// Errors carry git's truncated stderr with the token redacted.
func (m *Manager) run(ctx context.Context, remote string, args ...string) ([]byte, error) {
	return m.runInput(ctx, nil, remote, args...)
}

// runInput is [Manager.run] with stdin as git's standard input; nil
// stdin reads nothing.
func (m *Manager) runInput(ctx context.Context, stdin io.Reader, remote string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, m.git, args...)
	cmd.Stdin = stdin
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=true", "LC_ALL=C")
	if remote != "" && m.token != "" && m.onForge(remote) {
		key, err := headerKey(remote)
		if err != nil {
			return nil, err
		}
		cmd.Env = append(cmd.Env,
			"GIT_CONFIG_COUNT=1",
			"GIT_CONFIG_KEY_0="+key,
			"GIT_CONFIG_VALUE_0=Authorization: token "+m.token,
		)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > maxGitOutput {
			msg = msg[:maxGitOutput] + "…"
		}
		if m.token != "" {
			msg = strings.ReplaceAll(msg, m.token, "[redacted]")
		}
		if msg == "" {
			return nil, fmt.Errorf("git %s: %w", firstVerb(args), err)
		}
		return nil, fmt.Errorf("git %s: %w: %s", firstVerb(args), err, msg)
	}
	return stdout.Bytes(), nil
}

// offForgeHint adds to a failed fetch from a clone URL off the forge's
// origin that no token was sent, because an operator whose forge URL and
// the forge's own clone URLs differ (an internal address against a public
// one) otherwise sees only git's authentication error.
func (m *Manager) offForgeHint(cloneURL string, err error) error {
	if err == nil || m.token == "" || m.onForge(cloneURL) {
		return err
	}
	forge := "no forge URL"
	if m.forge != nil {
		forge = m.forge.Scheme + "://" + m.forge.Host
	}
	return fmt.Errorf("%w (the forge token was not sent: clone URL %s is not on the forge URL's origin, %s)", err, cloneURL, forge)
}

// onForge reports whether remote has the forge URL's scheme and host.
func (m *Manager) onForge(remote string) bool {
	u, err := url.Parse(remote)
	if err != nil || m.forge == nil {
		return false
	}
	return strings.EqualFold(u.Scheme, m.forge.Scheme) && strings.EqualFold(u.Host, m.forge.Host)
}

// headerKey returns the git config key that sends an extra header only to
// the origin of remote, such as http.https://git.example.com/.extraHeader.
func headerKey(remote string) (string, error) {
	u, err := url.Parse(remote)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("clone URL %q is not an http(s) URL", remote)
	}
	return "http." + u.Scheme + "://" + u.Host + "/.extraHeader", nil
}

// firstVerb returns the git subcommand of args, skipping global options.
func firstVerb(args []string) string {
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--git-dir", "-C":
			i++
		default:
			return args[i]
		}
	}
	return "git"
}
