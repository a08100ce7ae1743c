package plugin

import (
	"bufio"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/store"
)

// millionLinePipeline prints 1,000,000 lines from one step.
const millionLinePipeline = `def test(ctx):
    ctx.sh("seq 1000000")

job("test", inputs = ["octavo/push"], run = test)
`

// BenchmarkIngestMillionLines compares one run of a 1,000,000-line step
// through the sidecar (webhook, fetch, checkout, runner, live ingestion
// into SQLite, until the run is final) with the same runner writing its
// events to a file. Every iteration pushes a new commit to a repository
// that already has a mirror, as pushes to a repository using Octavo do.
// Reported metrics: the sidecar's seconds per run, the runner's alone,
// their ratio, and the CPU seconds the sidecar process used per run. It
// also splits the run at the runner's first event. It reports the time
// until then (fetch, checkout, runner start), and the time from then until
// the run is final, with its ratio to the runner alone over the same span.
func BenchmarkIngestMillionLines(b *testing.B) {
	s, _ := newTestServer(b, map[string]string{"OCTAVO_LOG_LEVEL": "info"})
	start(b, s)
	repo := newForgeRepo(b, "acme/big")
	work := b.TempDir()

	// push commits the pipeline with a new file, so every push brings a
	// new commit to fetch, and delivers its webhook.
	deliveries := 0
	push := func() (sha string, reply *http.Request) {
		deliveries++
		sha, before := repo.commitAndPush(b, "big output", map[string]string{
			".octavo/ci.star": millionLinePipeline,
			"push.txt":        itoa(uint(deliveries)),
		})
		req := signedRequest(b, "/hooks", "push", pushBody(b, repo.name, repo.cloneURL, "refs/heads/main", before, sha, "big output"), hookSecret)
		req.Header.Set("X-Gitea-Delivery", "bench-ingest-"+itoa(uint(deliveries)))
		return sha, req
	}
	run := func(req *http.Request) *store.Run {
		code, out := serveHTTP(s.Handler(), req)
		if code != http.StatusAccepted {
			b.Fatalf("push = %d %s", code, out)
		}
		r := waitRunClosely(b, s, decodeReply(b, out).RunID)
		if r.State != store.RunComplete || r.LastSeq < 1_000_000 {
			b.Fatalf("run = %s with %d events (%s), want complete with over 1,000,000", r.State, r.LastSeq, r.Error)
		}
		return r
	}
	// The first run clones the mirror.
	_, req := push()
	run(req)

	var alone, whole, sidecarCPU time.Duration
	// From the runner's first event (its at_ms) until the run is final
	// through the sidecar, or until the runner alone has exited: the part
	// that ingestion adds to, without fetch, checkout and process start.
	var ingest, aloneFromFirst time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		sha, req := push()
		// Baseline: the runner alone on a checkout, events to a file.
		checkout := filepath.Join(work, "src-"+sha)
		if out, err := exec.Command("git", "clone", "--quiet", repo.Dir, checkout).CombinedOutput(); err != nil {
			b.Fatalf("clone: %v\n%s", err, out)
		}
		payload := filepath.Join(work, "push.json")
		if err := os.WriteFile(payload, []byte(`{"sha":"`+sha+`","ref":"refs/heads/main","branch":"main"}`), 0o600); err != nil {
			b.Fatal(err)
		}
		// A new event file each time: truncating the last 100 MB one would
		// add its freeing to the runner's time.
		events := filepath.Join(work, "events.jsonl")
		if err := os.Remove(events); err != nil && !errors.Is(err, fs.ErrNotExist) {
			b.Fatal(err)
		}
		// Write back what earlier iterations left dirty, so neither side
		// pays for it.
		syscall.Sync()
		b.StartTimer()

		t0 := time.Now()
		cmd := exec.Command(runnerPath, "run", "--workspace", checkout, "--events", events, "--source", "octavo/push="+payload)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("runner alone: %v\n%s", err, out)
		}
		end := time.Now()
		alone += end.Sub(t0)
		aloneFromFirst += end.Sub(firstEventAt(b, events))

		b.StopTimer()
		syscall.Sync()
		b.StartTimer()
		t0 = time.Now()
		cpu0 := processCPU(b)
		r := run(req)
		end = time.Now()
		whole += end.Sub(t0)
		first, err := store.EventsAfter(b.Context(), s.st.DB, r.ID, 0, 1)
		if err != nil || len(first) == 0 {
			b.Fatalf("first event of run %d = %v, %v", r.ID, first, err)
		}
		ingest += end.Sub(time.UnixMilli(store.HeaderOf(first[0].Data).AtMs))
		sidecarCPU += processCPU(b) - cpu0
	}
	b.StopTimer()
	b.ReportMetric(whole.Seconds()/float64(b.N), "sidecar_s/run")
	b.ReportMetric(alone.Seconds()/float64(b.N), "runner_alone_s/run")
	b.ReportMetric(whole.Seconds()/alone.Seconds(), "ratio")
	b.ReportMetric(sidecarCPU.Seconds()/float64(b.N), "sidecar_cpu_s/run")
	b.ReportMetric(ingest.Seconds()/float64(b.N), "ingest_s/run")
	b.ReportMetric((whole-ingest).Seconds()/float64(b.N), "until_first_event_s/run")
	b.ReportMetric(ingest.Seconds()/aloneFromFirst.Seconds(), "ingest_ratio")
}

// firstEventAt returns the at_ms of the first event in the file at path.
func firstEventAt(b *testing.B, path string) time.Time {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		b.Fatalf("read first event of %s: %v", path, err)
	}
	return time.UnixMilli(store.HeaderOf(line).AtMs)
}

// waitRunClosely is [waitRun] with a poll interval short enough not to add
// to the time measured, reading only the state so that polling costs the
// sidecar's process little CPU.
func waitRunClosely(b *testing.B, s *Server, id uint) *store.Run {
	b.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var state store.RunState
		if err := s.st.DB.Raw("SELECT state FROM runs WHERE id = ?", id).Scan(&state).Error; err != nil {
			b.Fatal(err)
		}
		if state.Final() {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("run %d still %s after 60s", id, state)
		}
		time.Sleep(2 * time.Millisecond)
	}
	r, err := store.GetRun(b.Context(), s.st.DB, id)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// processCPU returns the user and system CPU time this process (the
// sidecar, without the runner and git processes it spawns) has used so
// far. It varies much less than the wall times with what else the machine
// runs.
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
