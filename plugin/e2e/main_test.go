package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/internal/giteatest"
)

func TestMain(m *testing.M) {
	code := giteatest.Main(m)
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// built holds the binaries compiled once per test binary from this checkout.
var built struct {
	once           sync.Once
	dir            string
	octavo, runner string
	err            error
}

// binaries returns the paths of octavo and octavo-runner, built from the
// module this test belongs to on first use.
func binaries(t *testing.T) (octavo, runner string) {
	t.Helper()
	built.once.Do(func() {
		built.err = buildBinaries()
	})
	if built.err != nil {
		t.Fatalf("build the binaries: %v", built.err)
	}
	return built.octavo, built.runner
}

func buildBinaries() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("find the module root: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))

	built.dir, err = os.MkdirTemp("", "octavo-e2e-bin-")
	if err != nil {
		return fmt.Errorf("create the binaries dir: %w", err)
	}
	for name, pkg := range map[string]string{"octavo": "./plugin/cmd/octavo", "octavo-runner": "./runner/cmd/octavo-runner"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(built.dir, name), pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
	}
	built.octavo = filepath.Join(built.dir, "octavo")
	built.runner = filepath.Join(built.dir, "octavo-runner")
	return nil
}
