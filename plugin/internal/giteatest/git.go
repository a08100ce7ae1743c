package giteatest

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// gitTimeout bounds one git command against the instance.
const gitTimeout = 2 * time.Minute

// Clone is a working copy of a repository on an [Instance]. Its git
// commands authenticate as the admin with an Authorization header handed to
// git through GIT_CONFIG_* environment variables, scoped to the instance's
// URL, so the token appears in no URL, argument list or .git/config.
type Clone struct {
	Dir  string
	inst *Instance
}

// Clone clones repo ("owner/name") over HTTP into dest, which must not
// exist or be empty.
func (i *Instance) Clone(ctx context.Context, repo, dest string) (*Clone, error) {
	c := &Clone{Dir: dest, inst: i}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return nil, fmt.Errorf("clone %s: %w", repo, err)
	}
	if _, err := c.run(ctx, filepath.Dir(dest), "clone", "--quiet", i.URL+"/"+repo+".git", dest); err != nil {
		return nil, err
	}
	return c, nil
}

// CloneURL returns the HTTP clone URL of repo.
func (i *Instance) CloneURL(repo string) string { return i.URL + "/" + repo + ".git" }

// GitEnv returns environment variables that make git send the admin's
// token to this instance, and only to it. The values contain the token:
// pass them to a child process's environment, never print them.
func (i *Instance) GitEnv() []string {
	basic := base64.StdEncoding.EncodeToString([]byte(i.Admin + ":" + i.Token))
	return []string{
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=http." + i.URL + "/.extraHeader",
		"GIT_CONFIG_VALUE_0=Authorization: Basic " + basic,
	}
}

// Git runs git with args in the working copy and returns its trimmed
// standard output.
func (c *Clone) Git(ctx context.Context, args ...string) (string, error) {
	return c.run(ctx, c.Dir, args...)
}

func (c *Clone) run(ctx context.Context, dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, gitTimeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(gitBaseEnv(), c.inst.GitEnv()...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// gitBaseEnv is the caller's environment without proxies or git settings
// that would change how the commands behave, plus a fixed identity.
func gitBaseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		upper := strings.ToUpper(name)
		if strings.HasSuffix(upper, "_PROXY") || strings.HasPrefix(upper, "GIT_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Octavo Test", "GIT_AUTHOR_EMAIL=octavo-test@example.test",
		"GIT_COMMITTER_NAME=Octavo Test", "GIT_COMMITTER_EMAIL=octavo-test@example.test",
	)
}

// WriteFiles writes files (path relative to the working copy → content),
// creating folders as needed. A nil-length entry is still written empty;
// use [Clone.Remove] to delete.
func (c *Clone) WriteFiles(files map[string]string) error {
	for name, content := range files {
		path := filepath.Join(c.Dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// Remove deletes files from the working copy; missing files are ignored.
func (c *Clone) Remove(names ...string) error {
	for _, name := range names {
		if err := os.RemoveAll(filepath.Join(c.Dir, filepath.FromSlash(name))); err != nil {
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
	return nil
}

// Commit stages every change and commits it with message, allowing an
// empty commit, and returns the new commit's sha.
func (c *Clone) Commit(ctx context.Context, message string) (string, error) {
	if _, err := c.Git(ctx, "add", "--all"); err != nil {
		return "", err
	}
	if _, err := c.Git(ctx, "commit", "--quiet", "--allow-empty", "-m", message); err != nil {
		return "", err
	}
	return c.Git(ctx, "rev-parse", "HEAD")
}

// Push pushes refspecs to origin.
func (c *Clone) Push(ctx context.Context, refspecs ...string) error {
	_, err := c.Git(ctx, append([]string{"push", "--quiet", "origin"}, refspecs...)...)
	return err
}

// CommitAndPush writes files, commits them with message, pushes the current
// branch and returns the new sha.
func (c *Clone) CommitAndPush(ctx context.Context, files map[string]string, message string) (string, error) {
	if err := c.WriteFiles(files); err != nil {
		return "", err
	}
	sha, err := c.Commit(ctx, message)
	if err != nil {
		return "", err
	}
	if err := c.Push(ctx, "HEAD"); err != nil {
		return "", err
	}
	return sha, nil
}
