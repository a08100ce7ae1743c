package plugin

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/store"
)

// processGone reports whether pid has exited (a zombie counts as gone).
func processGone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && strings.Contains(string(stat), ") Z ")
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("step process %d still running 30s after its run was stopped", pid)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func sleepPipeline(pidFile string) string {
	return fmt.Sprintf(`def test(ctx):
    ctx.sh("echo $$ > %s; exec sleep 300")

job("test", inputs = ["octavo/push"], run = test)
`, pidFile)
}

// TestNewPushReplacesActiveRun checks that a push to the same branch stops
// the active run's runner and its step, records the replacement, and
// leaves a run of another branch alone.
func TestNewPushReplacesActiveRun(t *testing.T) {
	s, _ := newTestServer(t, map[string]string{"OCTAVO_MAX_RUNS": "2"})
	start(t, s)
	h := s.Handler()
	repo := newForgeRepo(t, "acme/app")
	marks := t.TempDir()

	pidFile := filepath.Join(marks, "main.pid")
	first := pushHook(t, h, "/hooks", repo, "refs/heads/main", "slow", map[string]string{".octavo/ci.star": sleepPipeline(pidFile)})
	pid, err := strconv.Atoi(waitFile(t, pidFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	second := pushHook(t, h, "/hooks", repo, "refs/heads/main", "quick", map[string]string{".octavo/ci.star": tagPipelineFree})
	r := waitRun(t, s, first)
	if r.State != store.RunReplaced || r.ReplacedBy == nil || *r.ReplacedBy != second {
		t.Errorf("first run = %s replaced_by %v, want replaced by %d", r.State, r.ReplacedBy, second)
	}
	waitGone(t, pid)
	if r := waitRun(t, s, second); r.State != store.RunComplete {
		t.Errorf("second run = %s / %q (%s), want complete", r.State, r.FailureKind, r.Error)
	}
}

// TestDeleteCancelsActiveRun checks that deleting a branch cancels its
// active run and stops the step.
func TestDeleteCancelsActiveRun(t *testing.T) {
	s, _ := newTestServer(t, nil)
	start(t, s)
	h := s.Handler()
	repo := newForgeRepo(t, "acme/app")
	pidFile := filepath.Join(t.TempDir(), "pid")

	id := pushHook(t, h, "/hooks", repo, "refs/heads/main", "slow", map[string]string{".octavo/ci.star": sleepPipeline(pidFile)})
	pid, err := strconv.Atoi(waitFile(t, pidFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	body := []byte(`{"ref":"main","ref_type":"branch","repository":{"name":"app","full_name":"acme/app","owner":{"login":"acme"}}}`)
	code, out := serveHTTP(h, signedRequest(t, "/hooks", "delete", body, hookSecret))
	if code != 200 || !strings.Contains(out, "canceled 1 runs") {
		t.Fatalf("delete delivery = %d %s, want 200 canceled 1 runs", code, out)
	}
	if r := waitRun(t, s, id); r.State != store.RunCanceled {
		t.Errorf("run = %s, want canceled", r.State)
	}
	waitGone(t, pid)
}
