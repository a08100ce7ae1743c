package queue

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/octavo-ci/octavo/plugin/store"
)

// TestCancelByAnotherReplicaStopsTheRun marks an active run canceled in
// the database, as another replica does, and expects this replica's
// runner and step to stop. The watcher once read the state with Pluck
// into a single value, which always failed, so such runs kept running.
func TestCancelByAnotherReplicaStopsTheRun(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid not installed")
	}
	h := newHarness(t, fakeRunner(t))
	h.start()
	pidFile := filepath.Join(t.TempDir(), "pid")
	res := h.push("main", pidPipeline(pidFile))
	h.waitRun(res.RunID, func(r *store.Run) bool { return r.State == store.RunActive })
	pid := readPid(t, pidFile)

	err := h.st.DB.Model(&store.Run{}).Where("id = ?", res.RunID).Updates(map[string]any{"state": store.RunCanceled, "error": "canceled elsewhere"}).Error
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "step process of the canceled run to end", func() bool { return !alive(pid) })

	r, err := store.GetRun(t.Context(), h.st.DB, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != store.RunCanceled {
		t.Errorf("run = %s, want canceled", r.State)
	}
}
