// Package giteatest builds and runs a real Gitea on 127.0.0.1 for the
// end-to-end tests and the demo. It compiles Gitea from the Go module proxy
// once per machine and starts throwaway instances with an admin user and an
// API token. It creates repositories, pushes to them over HTTP and reads
// Gitea's webhook delivery history.
//
// Everything it starts listens on 127.0.0.1 only, and it stops only the
// processes it started itself.
package giteatest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Version is the Gitea release the harness builds. Its settings (notably
// [webhook] ALLOWED_HOST_LIST) are written for this version.
const Version = "v1.26.0"

// buildTags are the tags of upstream's plain source build with SQLite.
const buildTags = "sqlite sqlite_unlock_notify"

// buildLockTimeout bounds the wait for another process building into the
// same cache dir; a cold build takes about 4 minutes on 2 cores.
const buildLockTimeout = 15 * time.Minute

// Binary is a built Gitea: the executable and the copied source tree that
// Gitea reads its templates, locales and options from at run time (the
// build has no bindata tag), passed to it as [server] STATIC_ROOT_PATH.
type Binary struct {
	Path       string
	StaticRoot string
}

// CacheDir returns the directory the build is kept in:
// $XDG_CACHE_HOME/octavo/gitea-VERSION, or ~/.cache/octavo/gitea-VERSION
// when XDG_CACHE_HOME is unset.
func CacheDir() (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find the cache dir: %w (set XDG_CACHE_HOME)", err)
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "octavo", "gitea-"+Version), nil
}

// Build returns the cached Gitea build, compiling it first when the cache
// has none. It downloads code.gitea.io/gitea at [Version] through the Go
// module proxy, copies the module into the cache and runs go build there:
// about a minute with a warm Go build cache, about 4 minutes cold on 2
// cores. A file lock in the cache dir makes concurrent callers (parallel
// test binaries, a demo) build once; the others wait and reuse the result.
// log receives progress lines and may be nil.
func Build(ctx context.Context, log *slog.Logger) (Binary, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := CacheDir()
	if err != nil {
		return Binary{}, err
	}
	bin := Binary{Path: filepath.Join(dir, "gitea"), StaticRoot: filepath.Join(dir, "src")}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binary{}, fmt.Errorf("create the gitea cache dir: %w", err)
	}

	unlock, err := lockFile(ctx, filepath.Join(dir, ".lock"), buildLockTimeout)
	if err != nil {
		return Binary{}, err
	}
	defer unlock()

	if bin.complete() {
		return bin, nil
	}

	log.InfoContext(ctx, "building gitea, about 1 minute with a warm go build cache and 4 cold", "version", Version, "cache_dir", dir)
	start := time.Now()
	if err := buildInto(ctx, dir); err != nil {
		return Binary{}, err
	}
	log.InfoContext(ctx, "built gitea", "path", bin.Path, "duration", time.Since(start).Round(time.Second))
	return bin, nil
}

// complete reports whether the binary and the static root it needs exist.
func (b Binary) complete() bool {
	for _, p := range []string{b.Path, filepath.Join(b.StaticRoot, "options"), filepath.Join(b.StaticRoot, "templates")} {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// buildInto downloads, copies and compiles Gitea in a temporary dir under
// dir, then moves the result into place, so an interrupted build leaves no
// half-written binary behind.
func buildInto(ctx context.Context, dir string) error {
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return fmt.Errorf("create the build dir: %w", err)
	}
	defer os.RemoveAll(tmp)

	moduleDir, err := downloadModule(ctx, tmp)
	if err != nil {
		return err
	}

	// The module cache is read-only; go build writes nothing into the source,
	// but the copy is kept and must stay removable.
	src := filepath.Join(tmp, "src")
	if err := os.CopyFS(src, os.DirFS(moduleDir)); err != nil {
		return fmt.Errorf("copy the gitea module from %s: %w", moduleDir, err)
	}

	exe := filepath.Join(tmp, "gitea")
	ldflags := fmt.Sprintf("-X main.Version=%s -X 'main.Tags=%s'", Version[1:], buildTags)
	cmd := exec.CommandContext(ctx, "go", "build", "-buildvcs=false", "-tags", buildTags, "-ldflags", ldflags, "-o", exe, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build gitea %s: %w\n%s", Version, err, tail(out, 4000))
	}

	final := Binary{Path: filepath.Join(dir, "gitea"), StaticRoot: filepath.Join(dir, "src")}
	if err := os.RemoveAll(final.StaticRoot); err != nil {
		return fmt.Errorf("remove the old static root: %w", err)
	}
	if err := os.Rename(src, final.StaticRoot); err != nil {
		return fmt.Errorf("install the static root: %w", err)
	}
	if err := os.Rename(exe, final.Path); err != nil {
		return fmt.Errorf("install the gitea binary: %w", err)
	}
	return nil
}

// downloadModule fetches code.gitea.io/gitea at [Version] into the Go module
// cache and returns its directory there. It runs in the empty dir work, so
// no go.mod around it is consulted or changed.
func downloadModule(ctx context.Context, work string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", "code.gitea.io/gitea@"+Version)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "GOWORK=off", "GO111MODULE=on", "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return "", fmt.Errorf("go mod download code.gitea.io/gitea@%s: %w\n%s%s", Version, err, tail(out, 2000), tail(exitErr.Stderr, 2000))
		}
		return "", fmt.Errorf("go mod download code.gitea.io/gitea@%s: %w", Version, err)
	}

	var info struct {
		Dir   string
		Error string
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("decode go mod download output: %w", err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("go mod download code.gitea.io/gitea@%s: %s", Version, info.Error)
	}
	return info.Dir, nil
}

// lockFile takes an exclusive flock on path, polling until timeout or ctx
// ends, and returns the function that releases it.
func lockFile(ctx context.Context, path string, timeout time.Duration) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open the build lock: %w", err)
	}

	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lock %s: another build held it for over %s", path, timeout)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for the build lock: %w", ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// tail returns at most the last n bytes of b, for error messages.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
