package giteatest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"
)

// sharedStartTimeout bounds building and starting the shared instance; a
// cold build alone takes about 4 minutes on 2 cores.
const sharedStartTimeout = 20 * time.Minute

var shared struct {
	once sync.Once
	inst *Instance
	dir  string
	err  error
}

// Shared returns the Gitea instance of this test binary, building Gitea and
// starting it on a free port on first use. Every test of the binary gets
// the same instance, so each should use repositories of its own. The
// binary's TestMain must call [Main], which stops the instance.
func Shared(t testing.TB) *Instance {
	t.Helper()
	shared.once.Do(func() {
		shared.inst, shared.err = startShared()
	})
	if shared.err != nil {
		t.Fatalf("start the shared gitea: %v", shared.err)
	}
	return shared.inst
}

func startShared() (*Instance, error) {
	ctx, cancel := context.WithTimeout(context.Background(), sharedStartTimeout)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	bin, err := Build(ctx, log)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "octavo-gitea-")
	if err != nil {
		return nil, fmt.Errorf("create the gitea dir: %w", err)
	}
	shared.dir = dir

	// A free port can be taken by someone else before gitea binds it, so a
	// failed start is tried again on a new port.
	for attempt := 1; ; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		inst, err := Start(ctx, bin, dir, port, log)
		if err == nil || attempt == 3 {
			return inst, err
		}
	}
}

// Main runs the tests of m, then stops the shared instance (if a test
// started it) and removes its state unless a test failed, and returns the
// exit code for os.Exit:
//
//	func TestMain(m *testing.M) { os.Exit(giteatest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if shared.inst != nil {
		if err := shared.inst.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop the shared gitea: %v\n", err)
		}
	}
	if shared.dir != "" {
		if code == 0 {
			os.RemoveAll(shared.dir)
		} else {
			fmt.Fprintf(os.Stderr, "gitea state and logs kept in %s\n", shared.dir)
		}
	}
	return code
}
