package plugin

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/store"
)

// sidecar is an octavo serve process started from the built binary.
type sidecar struct {
	cmd  *exec.Cmd
	addr string
	done chan error
}

// startSidecar starts octavo serve with env on a free loopback port and
// waits for its listening log line.
func startSidecar(t *testing.T, env map[string]string) *sidecar {
	t.Helper()
	cmd := exec.Command(octavoPath, "serve", "-listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "OCTAVO_WEBHOOK_SECRET="+hookSecret, "OCTAVO_FORGE_TOKEN="+gitToken, "OCTAVO_CATCH_UP=false")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &sidecar{cmd: cmd, done: make(chan error, 1)}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.done
	})

	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" {
				addr <- rec.Addr
			}
			t.Logf("octavo: %s", line)
		}
		_, _ = io.Copy(io.Discard, stderr)
		s.done <- cmd.Wait()
	}()
	select {
	case s.addr = <-addr:
	case <-time.After(30 * time.Second):
		t.Fatal("octavo serve did not log its listening address within 30s")
	}
	return s
}

func (s *sidecar) deliver(t *testing.T, body []byte) uint {
	t.Helper()
	req := signedRequest(t, "http://"+s.addr+"/hooks", "push", body, hookSecret)
	req.RequestURI = ""
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delivery = %d %s, want 202", resp.StatusCode, raw)
	}
	return decodeReply(t, string(raw)).RunID
}

func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		raw, err := os.ReadFile(path)
		if err == nil && bytes.HasSuffix(raw, []byte("\n")) {
			return strings.TrimSpace(string(raw))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not written within 60s", path)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestSidecarKilledMidRunResumes kills octavo serve with SIGKILL while a
// step runs, starts it again on the same data folder and expects the run
// to be re-queued and to finish on its second attempt.
func TestSidecarKilledMidRunResumes(t *testing.T) {
	dataDir := t.TempDir()
	marks := t.TempDir()
	pidFile := filepath.Join(marks, "pid")
	pipeline := fmt.Sprintf(`def test(ctx):
    ctx.sh("if [ -f %[1]s/first ]; then echo second attempt; else touch %[1]s/first; echo $$ > %[2]s; exec sleep 300; fi")

job("test", inputs = ["octavo/push"], run = test)
`, marks, pidFile)

	repo := newForgeRepo(t, "acme/app")
	sha, before := repo.commitAndPush(t, "slow pipeline", map[string]string{".octavo/ci.star": pipeline})
	body := pushBody(t, repo.name, repo.cloneURL, "refs/heads/main", before, sha, "slow pipeline")
	env := map[string]string{"OCTAVO_DATA_DIR": dataDir, "OCTAVO_SHUTDOWN_GRACE": "1s"}

	first := startSidecar(t, env)
	id := first.deliver(t, body)
	stepPid, err := strconv.Atoi(waitFile(t, pidFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(stepPid, syscall.SIGKILL) })

	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	first.done <- nil // for the cleanup's receive
	// The machine is assumed to have lost the step too, as after a crash.
	_ = syscall.Kill(stepPid, syscall.SIGKILL)

	second := startSidecar(t, env)
	st, err := store.Open(t.Context(), store.Options{DSN: filepath.Join(dataDir, "octavo.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	deadline := time.Now().Add(60 * time.Second)
	var r *store.Run
	for {
		r, err = store.GetRun(t.Context(), st.DB, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State.Final() || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.State != store.RunComplete || r.Attempt != 2 {
		t.Errorf("run after restart = %s / %q attempt %d (%s), want complete on attempt 2", r.State, r.FailureKind, r.Attempt, r.Error)
	}
	evs, err := store.EventsAfter(t.Context(), st.DB, id, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 || evs[0].Seq != 1 || evs[0].Type != "run_started" {
		t.Errorf("events after restart start with %+v, want run_started at seq 1", evs)
	}

	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-second.done:
		second.done <- err
		if err != nil {
			t.Errorf("octavo serve exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("octavo serve still running 30s after SIGTERM")
	}
}
