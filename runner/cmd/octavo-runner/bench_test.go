package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The benchmarks below time whole octavo-runner processes against a
// baseline measured in the same iteration, and report the ratio, because
// absolute times depend on the machine. Targets: step overhead at most 1.3x,
// log throughput at most 5x, peak RSS at most 30 MB.

// BenchmarkStepOverhead runs 200 `true` steps through the runner and the
// same 200 `sh -c true` processes started directly from Go.
func BenchmarkStepOverhead(b *testing.B) {
	const steps = 200
	ws := benchWorkspace(b, `
def many(ctx):
    for _ in range(200):
        ctx.sh("true")

job("many", inputs = ["octavo/push"], run = many)
`)
	events := filepath.Join(b.TempDir(), "events.jsonl")

	var runner, baseline time.Duration
	for b.Loop() {
		began := time.Now()
		for range steps {
			if err := exec.Command("sh", "-c", "true").Run(); err != nil {
				b.Fatal(err)
			}
		}
		baseline += time.Since(began)

		began = time.Now()
		benchRun(b, ws, events)
		runner += time.Since(began)
	}
	b.ReportMetric(float64(runner)/float64(baseline), "x-baseline")
	b.ReportMetric(float64(runner.Microseconds())/float64(b.N*steps), "µs/step")
}

// BenchmarkLogThroughput runs one step printing 1,000,000 lines to an
// events file, against the same command writing to a file, and reports
// the runner's peak resident set size.
func BenchmarkLogThroughput(b *testing.B) {
	ws := benchWorkspace(b, `
def loud(ctx):
    ctx.sh("seq 1 1000000")

job("loud", inputs = ["octavo/push"], run = loud)
`)
	dir := b.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	plain := filepath.Join(dir, "plain.txt")

	var runner, baseline time.Duration
	var peakKB int64
	for b.Loop() {
		began := time.Now()
		if err := exec.Command("sh", "-c", "seq 1 1000000 > "+plain).Run(); err != nil {
			b.Fatal(err)
		}
		baseline += time.Since(began)

		began = time.Now()
		stderr := benchRun(b, ws, events)
		runner += time.Since(began)
		peakKB = max(peakKB, loggedPeakRSS(b, stderr))
	}
	b.ReportMetric(float64(runner)/float64(baseline), "x-baseline")
	b.ReportMetric(float64(peakKB)/1024, "peak-RSS-MB")
}

func benchWorkspace(b *testing.B, pipeline string) string {
	b.Helper()
	ws := b.TempDir()
	if err := os.MkdirAll(filepath.Join(ws, ".octavo"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, ".octavo", "ci.star"), []byte(pipeline), 0o644); err != nil {
		b.Fatal(err)
	}
	return ws
}

// benchRun runs the runner, checks that the run succeeded, and returns its
// log output.
func benchRun(b *testing.B, ws, events string) []byte {
	b.Helper()
	cmd := exec.Command(runnerBin, "run", "--workspace", ws, "--events", events, "--parallel", "1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("octavo-runner: %v\n%s", err, stderr.Bytes())
	}
	if !bytes.Contains(stderr.Bytes(), []byte(`"outcome":"success"`)) {
		b.Fatalf("run did not succeed:\n%s", stderr.Bytes())
	}
	return stderr.Bytes()
}

// loggedPeakRSS returns peak_rss_kb from the runner's "run finished" log
// line. The rusage of the child is no use here: on Linux it also counts
// the memory of this test process, which the child shared until exec.
func loggedPeakRSS(b *testing.B, logs []byte) int64 {
	b.Helper()
	for line := range bytes.Lines(logs) {
		var rec struct {
			Msg       string `json:"msg"`
			PeakRSSKB int64  `json:"peak_rss_kb"`
		}
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "run finished" {
			return rec.PeakRSSKB
		}
	}
	b.Fatalf("no run finished log line in:\n%s", logs)
	return 0
}
