// Command octavo-demo shows Octavo working against a real Gitea on this
// machine: it builds and starts Gitea on 127.0.0.1:3000, creates an admin
// user, a token and a sample repository, starts `octavo serve` on
// 127.0.0.1:8080 with embedded SQLite, registers the webhook, pushes a
// commit, waits for its run and prints where to look. It keeps both
// servers running until interrupted, then stops them.
//
// `make demo` builds the binaries and runs it from the repository root.
// State is kept under -state (default .cache/demo), so a second demo reuses
// the Gitea build, the admin and the repository, and pushes a new commit.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/octavo-ci/octavo/plugin/internal/giteatest"
)

// repoName is the sample repository's name; its owner is the admin.
const repoName = "octavo-demo"

type options struct {
	bin        string
	state      string
	sample     string
	giteaPort  int
	listen     string
	runTimeout time.Duration
}

func main() {
	var opts options
	flag.StringVar(&opts.bin, "bin", "bin", "folder holding the octavo and octavo-runner binaries")
	flag.StringVar(&opts.state, "state", ".cache/demo", "folder for the demo's Gitea, octavo data and working copy; reused by the next demo")
	flag.StringVar(&opts.sample, "sample", "testdata/demo", "folder whose files are pushed as the sample repository")
	flag.IntVar(&opts.giteaPort, "gitea-port", 3000, "port of Gitea on 127.0.0.1")
	flag.StringVar(&opts.listen, "listen", "127.0.0.1:8080", "address octavo serve listens on")
	flag.DurationVar(&opts.runTimeout, "run-timeout", 5*time.Minute, "how long to wait for the pushed commit's run to finish")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := run(ctx, log, opts); err != nil {
		log.Error("demo failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, opts options) error {
	octavoBin, runnerBin, err := findBinaries(opts.bin)
	if err != nil {
		return err
	}
	state, err := filepath.Abs(opts.state)
	if err != nil {
		return fmt.Errorf("resolve the state folder: %w", err)
	}

	bin, err := giteatest.Build(ctx, log)
	if err != nil {
		return err
	}
	gitea, err := giteatest.Start(ctx, bin, filepath.Join(state, "gitea"), opts.giteaPort, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := gitea.Stop(); err != nil {
			log.Error("stop gitea", "err", err)
		}
	}()

	repo, err := gitea.CreateRepo(ctx, repoName)
	if err != nil {
		return err
	}
	secret, err := loadOrCreateSecret(filepath.Join(state, "webhook-secret"))
	if err != nil {
		return err
	}

	sidecar, err := giteatest.StartSidecar(ctx, giteatest.SidecarConfig{
		Octavo: octavoBin,
		Runner: runnerBin,
		Gitea:  gitea,
		Listen: opts.listen,
		Dir:    filepath.Join(state, "octavo"),
		Secret: secret,
		Log:    log,
	})
	if err != nil {
		return err
	}
	defer func() {
		log.Info("stopping octavo")
		if err := sidecar.Stop(); err != nil {
			log.Error("stop octavo", "err", err)
		}
	}()

	out, err := sidecar.Register(ctx, repo.FullName)
	if err != nil {
		return err
	}
	fmt.Print(indent(out))

	sha, err := pushSample(ctx, gitea, repo.FullName, opts.sample, filepath.Join(state, "work"))
	if err != nil {
		return err
	}
	log.Info("pushed the sample repository", "repo", repo.FullName, "sha", sha)

	status, err := waitForStatus(ctx, gitea, repo.FullName, sha, opts.runTimeout)
	if err != nil {
		return fmt.Errorf("%w; octavo's log is %s", err, filepath.Join(sidecar.Config.Dir, "octavo.log"))
	}

	fmt.Printf(`
Run finished: %s (%s)
  run page     %s
  gitea commit %s
  badge        %s/badge/%s.svg
  gitea login  user %s at %s, password in %s
  octavo log   %s

Press Ctrl-C to stop Gitea and octavo.
`, status.State, status.Description, status.TargetURL, gitea.CommitURL(repo.FullName, sha),
		sidecar.URL, repo.FullName, gitea.Admin, gitea.URL, filepath.Join(gitea.Dir, "credentials.json"),
		filepath.Join(sidecar.Config.Dir, "octavo.log"))

	<-ctx.Done()
	log.Info("interrupted, shutting down")
	return nil
}

func findBinaries(dir string) (string, string, error) {
	var paths [2]string
	for i, name := range []string{"octavo", "octavo-runner"} {
		path, err := filepath.Abs(filepath.Join(dir, name))
		if err != nil {
			return "", "", fmt.Errorf("resolve %s: %w", name, err)
		}
		if _, err := os.Stat(path); err != nil {
			return "", "", fmt.Errorf("find %s: %w (run make build first)", name, err)
		}
		paths[i] = path
	}
	return paths[0], paths[1], nil
}

// loadOrCreateSecret returns the webhook secret stored at path, creating a
// random one on the first demo.
func loadOrCreateSecret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 24)
	_, _ = rand.Read(buf) // since Go 1.24, Read never returns an error
	secret := hex.EncodeToString(buf)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("create the state folder: %w", err)
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write the webhook secret: %w", err)
	}
	return secret, nil
}

// pushSample clones repo afresh into work, copies the sample files over it,
// records the time in demo-push.txt so every demo pushes a new commit, and
// pushes main.
func pushSample(ctx context.Context, gitea *giteatest.Instance, repo, sample, work string) (string, error) {
	if err := os.RemoveAll(work); err != nil {
		return "", fmt.Errorf("remove the old working copy: %w", err)
	}
	clone, err := gitea.Clone(ctx, repo, work)
	if err != nil {
		return "", err
	}
	if err := copyTree(sample, work); err != nil {
		return "", fmt.Errorf("copy the sample from %s: %w", sample, err)
	}
	stamp := "pushed by make demo at " + time.Now().UTC().Format(time.RFC3339) + "\n"
	return clone.CommitAndPush(ctx, map[string]string{"demo-push.txt": stamp}, "Update the demo at "+time.Now().UTC().Format(time.RFC3339))
}

// copyTree copies the files under src into dst, overwriting files of the
// same name and keeping the executable bits (os.CopyFS refuses to
// overwrite).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
}

// finalStates are the commit-status states Octavo ends a run with.
var finalStates = map[string]bool{"success": true, "failure": true, "error": true, "warning": true}

// waitForStatus polls Gitea until sha carries a final status of context
// octavo, and returns it.
func waitForStatus(ctx context.Context, gitea *giteatest.Instance, repo, sha string, timeout time.Duration) (giteatest.Status, error) {
	deadline := time.Now().Add(timeout)
	last := "none"
	for {
		cs, err := gitea.CombinedStatus(ctx, repo, sha)
		if err == nil {
			if st, ok := cs.Context("octavo"); ok {
				if finalStates[st.State] {
					return st, nil
				}
				if st.State != last {
					fmt.Printf("  status %s: %s\n", st.State, st.Description)
					last = st.State
				}
			}
		}
		if time.Now().After(deadline) {
			return giteatest.Status{}, fmt.Errorf("no final octavo status on %s within %s (last state %s)", sha[:min(len(sha), 12)], timeout, last)
		}
		select {
		case <-ctx.Done():
			return giteatest.Status{}, fmt.Errorf("wait for the run: %w", ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}
