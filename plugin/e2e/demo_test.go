package e2e

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/internal/giteatest"
)

// TestE2EDemoSamplePipelinePasses pushes the demo's sample repository: its
// run passes although the lint job fails, because lint may fail, and
// report reads build's outputs.
func TestE2EDemoSamplePipelinePasses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "demo-sample")
	files := map[string]string{}
	root := filepath.Join("..", "..", "testdata", "demo")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		files[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	sha := e.push(files, "Add the demo sample")
	st := e.waitStatus(sha)
	if st.State != "success" {
		t.Fatalf("demo run ended %q (%s), want success", st.State, st.Description)
	}

	run := e.run(runIDFromURL(t, st.TargetURL))
	jobs := map[string]string{}
	for _, j := range run.Jobs {
		jobs[j.Name] = j.State
	}
	for name, want := range map[string]string{"build": "succeeded", "lint": "failed", "report": "succeeded"} {
		if jobs[name] != want {
			t.Errorf("job %s is %q, want %q (jobs: %v)", name, jobs[name], want, jobs)
		}
	}
}

// TestE2EDemoRunsTwiceAndStops runs the demo program as `make demo` does,
// on free ports, twice on the same state dir: each run ends with a passing
// run and, on SIGINT, stops Gitea and octavo and exits 0.
func TestE2EDemoRunsTwiceAndStops(t *testing.T) {
	t.Parallel()
	octavo, _ := binaries(t)
	binDir := filepath.Dir(octavo)
	demo := filepath.Join(t.TempDir(), "octavo-demo")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", demo, "../cmd/octavo-demo")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build octavo-demo: %v\n%s", err, out)
	}
	state := t.TempDir()

	for round := 1; round <= 2; round++ {
		giteaPort, err := giteatest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		listenPort, err := giteatest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		listen := "127.0.0.1:" + strconv.Itoa(listenPort)
		runDemo(t, demo, "-bin", binDir, "-state", state, "-sample", "../../testdata/demo",
			"-gitea-port", strconv.Itoa(giteaPort), "-listen", listen)

		for _, addr := range []string{"127.0.0.1:" + strconv.Itoa(giteaPort), listen} {
			if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				conn.Close()
				t.Errorf("round %d: %s still accepts connections after the demo exited", round, addr)
			}
		}
	}
}

// runDemo starts the demo, waits for its summary, checks that the run
// passed, interrupts it and waits for a clean exit.
func runDemo(t *testing.T, demo string, args ...string) {
	t.Helper()
	cmd := exec.Command(demo, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	// Never leave the demo running if the test stops early.
	defer func() { _ = cmd.Process.Kill() }()

	var output []string
	timeout := time.After(runTimeout)
	for done := false; !done; {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("demo exited before its summary:\n%s\n%s", strings.Join(output, "\n"), stderr.String())
			}
			output = append(output, line)
			done = strings.Contains(line, "Press Ctrl-C")
		case <-timeout:
			t.Fatalf("no demo summary within %s:\n%s\n%s", runTimeout, strings.Join(output, "\n"), stderr.String())
		}
	}
	text := strings.Join(output, "\n")
	if !strings.Contains(text, "Run finished: success") {
		t.Errorf("demo summary does not report a passing run:\n%s", text)
	}
	for _, want := range []string{"run page", "gitea commit", "badge"} {
		if !strings.Contains(text, want) {
			t.Errorf("demo summary has no %s line:\n%s", want, text)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	select {
	case err := <-exited:
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			t.Errorf("demo exited with %v after SIGINT, want 0:\n%s", err, stderr.String())
		} else if err != nil {
			t.Error(err)
		}
	case <-ctx.Done():
		t.Fatalf("demo did not exit within 2 minutes of SIGINT:\n%s", stderr.String())
	}
}
