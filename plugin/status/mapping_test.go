package status

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/octavo-ci/octavo/plugin/forge"
	"github.com/octavo-ci/octavo/plugin/store"
)

func ptr[T any](v T) *T { return &v }

func TestToRunStatus(t *testing.T) {
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	end := start.Add(72*time.Second + 300*time.Millisecond)
	runURL := runURLFunc("https://ci.example.com/octavo/")

	tests := []struct {
		name      string
		run       store.Run
		failedJob string
		want      Desired
		wantNone  bool
	}{
		{
			name: "queued run is pending",
			run:  store.Run{ID: 5, State: store.RunQueued},
			want: Desired{forge.StatePending, "Queued", "https://ci.example.com/octavo/runs/5"},
		},
		{
			name: "active run is pending",
			run:  store.Run{ID: 5, State: store.RunActive, StartedAt: &start},
			want: Desired{forge.StatePending, "Running", "https://ci.example.com/octavo/runs/5"},
		},
		{
			name: "complete run passes with its duration",
			run:  store.Run{ID: 5, State: store.RunComplete, StartedAt: &start, FinishedAt: &end},
			want: Desired{forge.StateSuccess, "Passed in 1m12s", "https://ci.example.com/octavo/runs/5"},
		},
		{
			name: "complete run without times",
			run:  store.Run{ID: 5, State: store.RunComplete},
			want: Desired{forge.StateSuccess, "Passed", "https://ci.example.com/octavo/runs/5"},
		},
		{
			name:      "pipeline failure names the first failed job",
			run:       store.Run{ID: 5, State: store.RunFailed, FailureKind: store.FailurePipeline, Error: "job test failed"},
			failedJob: "test",
			want:      Desired{forge.StateFailure, "Failed: test", "https://ci.example.com/octavo/runs/5"},
		},
		{
			name: "pipeline failure without jobs falls back to the error",
			run:  store.Run{ID: 5, State: store.RunFailed, FailureKind: store.FailurePipeline, Error: "cycle: a -> b -> a"},
			want: Desired{forge.StateFailure, "Failed: cycle: a -> b -> a", "https://ci.example.com/octavo/runs/5"},
		},
		{
			name: "pipeline failure without jobs or error",
			run:  store.Run{ID: 5, State: store.RunFailed, FailureKind: store.FailurePipeline},
			want: Desired{forge.StateFailure, "Failed", "https://ci.example.com/octavo/runs/5"},
		},
		{
			name: "crashed runner is an error with the reason",
			run:  store.Run{ID: 5, State: store.RunFailed, FailureKind: store.FailureProcessCrashed, Error: "runner exited with signal killed"},
			want: Desired{forge.StateError, "Runner crashed: runner exited with signal killed", "https://ci.example.com/octavo/runs/5"},
		},
		{
			name: "timed-out run is an error",
			run:  store.Run{ID: 5, State: store.RunFailed, FailureKind: store.FailureTimedOut, Error: "stopped after 1h0m0s"},
			want: Desired{forge.StateError, "Timed out: stopped after 1h0m0s", "https://ci.example.com/octavo/runs/5"},
		},
		{
			name: "orphaned run is an error",
			run:  store.Run{ID: 5, State: store.RunFailed, FailureKind: store.FailureOrphaned},
			want: Desired{forge.StateError, "Interrupted by an octavo restart", "https://ci.example.com/octavo/runs/5"},
		},
		{
			name: "clone failure is an error",
			run:  store.Run{ID: 5, State: store.RunFailed, FailureKind: store.FailureCloneFailed, Error: "fetch: connection refused"},
			want: Desired{forge.StateError, "Clone failed: fetch: connection refused", "https://ci.example.com/octavo/runs/5"},
		},
		{
			name: "failure of an unknown kind is an error",
			run:  store.Run{ID: 5, State: store.RunFailed, FailureKind: "disk-full", Error: "no space left"},
			want: Desired{forge.StateError, "Failed: no space left", "https://ci.example.com/octavo/runs/5"},
		},
		{
			name: "replaced run warns and links the new run",
			run:  store.Run{ID: 5, State: store.RunReplaced, ReplacedBy: ptr(uint(9))},
			want: Desired{forge.StateWarning, "Replaced by run 9", "https://ci.example.com/octavo/runs/9"},
		},
		{
			name: "replaced run without its successor",
			run:  store.Run{ID: 5, State: store.RunReplaced},
			want: Desired{forge.StateWarning, "Replaced by a newer run", "https://ci.example.com/octavo/runs/5"},
		},
		{
			name: "canceled run is an error",
			run:  store.Run{ID: 5, State: store.RunCanceled, Error: "branch deleted"},
			want: Desired{forge.StateError, "Canceled", "https://ci.example.com/octavo/runs/5"},
		},
		{
			name:     "skipped run gets no status",
			run:      store.Run{ID: 5, State: store.RunSkipped},
			wantNone: true,
		},
		{
			name:     "unknown state gets no status",
			run:      store.Run{ID: 5, State: "paused"},
			wantNone: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := toRunStatus(&tt.run, tt.failedJob, runURL)
			if ok == tt.wantNone {
				t.Fatalf("got ok %v, want %v", ok, !tt.wantNone)
			}
			if tt.wantNone {
				return
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if !got.State.Valid() {
				t.Errorf("got state %q, which the forges do not both know", got.State)
			}
		})
	}
}

func TestToJobStatus(t *testing.T) {
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	end := start.Add(3 * time.Second)
	run := &store.Run{ID: 7, State: store.RunActive}
	runURL := runURLFunc("http://127.0.0.1:8080")

	tests := []struct {
		name     string
		job      store.Job
		want     Desired
		wantNone bool
	}{
		{"waiting job", store.Job{Name: "test", State: "pending"}, Desired{forge.StatePending, "Waiting", "http://127.0.0.1:8080/runs/7"}, false},
		{"running job", store.Job{Name: "test", State: "running"}, Desired{forge.StatePending, "Running", "http://127.0.0.1:8080/runs/7"}, false},
		{"succeeded job", store.Job{Name: "test", State: "succeeded", StartedAt: &start, FinishedAt: &end}, Desired{forge.StateSuccess, "Passed in 3s", "http://127.0.0.1:8080/runs/7"}, false},
		{"failed job with its error", store.Job{Name: "test", State: "failed", Error: "exit status 1"}, Desired{forge.StateFailure, "Failed: exit status 1", "http://127.0.0.1:8080/runs/7"}, false},
		{"job allowed to fail", store.Job{Name: "lint", State: "failed", AllowFailure: true}, Desired{forge.StateSuccess, "Failed, allowed to fail", "http://127.0.0.1:8080/runs/7"}, false},
		{"skipped job is never sent as skipped", store.Job{Name: "deploy", State: "skipped"}, Desired{forge.StateSuccess, "Skipped", "http://127.0.0.1:8080/runs/7"}, false},
		{"unknown job state", store.Job{Name: "x", State: "paused"}, Desired{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := toJobStatus(run, &tt.job, runURL)
			if ok == tt.wantNone {
				t.Fatalf("got ok %v, want %v", ok, !tt.wantNone)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCutDescription(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"short text is kept", "Failed: test", "Failed: test"},
		{"line breaks become spaces", "Clone failed:\nfatal: not found\r\n", "Clone failed: fatal: not found"},
		{"invalid UTF-8 is replaced", "bad \xff byte", "bad \uFFFD byte"},
		// Terminal colour codes from a crashed runner's output used to reach
		// the forge, which shows the escape character as a box.
		{"control characters are dropped", "Runner crashed: \x1b[31mpanic\x1b[0m \x00 now\x07", "Runner crashed: panic now"},
		{"exactly the limit is kept", strings.Repeat("é", maxDescription), strings.Repeat("é", maxDescription)},
		{"multi-byte text is cut on a rune boundary", strings.Repeat("é", 200), strings.Repeat("é", maxDescription-1) + "…"},
		{"emoji are cut whole", strings.Repeat("🚀", 150), strings.Repeat("🚀", maxDescription-1) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cutDescription(tt.in)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if !utf8.ValidString(got) {
				t.Errorf("got invalid UTF-8 %q", got)
			}
			if n := utf8.RuneCountInString(got); n > maxDescription {
				t.Errorf("got %d characters, want at most %d", n, maxDescription)
			}
		})
	}
}

func TestRunURLKeepsPathPrefix(t *testing.T) {
	tests := []struct {
		base string
		want string
	}{
		{"https://ci.example.com/", "https://ci.example.com/runs/12"},
		{"https://ci.example.com", "https://ci.example.com/runs/12"},
		{"https://example.com/tools/octavo/", "https://example.com/tools/octavo/runs/12"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := runURLFunc(tt.base)(12); got != tt.want {
			t.Errorf("base %q: got %q, want %q", tt.base, got, tt.want)
		}
	}
}

func TestBackoffIsCapped(t *testing.T) {
	o := New(nil, nil, Options{MinBackoff: time.Second, MaxBackoff: 5 * time.Minute})
	want := []time.Duration{
		time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, 64 * time.Second, 128 * time.Second, 256 * time.Second, 5 * time.Minute,
	}
	for i, w := range want {
		if got := o.backoff(i + 1); got != w {
			t.Errorf("attempt %d: got %v, want %v", i+1, got, w)
		}
	}
	if got := o.backoff(10_000); got != 5*time.Minute {
		t.Errorf("attempt 10000: got %v, want the 5m cap", got)
	}
}

// TestPassedDuration checks the duration in "Passed in …". A run shorter
// than half a second used to read "Passed in 0s", and a 1.4 s run "Passed
// in 1s", while the run page showed 300ms and 1.4s.
func TestPassedDuration(t *testing.T) {
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	runURL := runURLFunc("https://forge.example.com/ci/")
	tests := []struct {
		name    string
		elapsed time.Duration
		want    string
	}{
		{"sub-second run shows milliseconds", 300*time.Millisecond + 400*time.Microsecond, "Passed in 300ms"},
		{"run of a few seconds shows tenths", 1400 * time.Millisecond, "Passed in 1.4s"},
		{"run over a minute rounds to the second", 72*time.Second + 300*time.Millisecond, "Passed in 1m12s"},
		{"run over an hour keeps all units", time.Hour + 2*time.Minute + 3*time.Second + 600*time.Millisecond, "Passed in 1h2m4s"},
		{"instant run", 0, "Passed in 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			end := start.Add(tt.elapsed)
			got, ok := toRunStatus(&store.Run{ID: 3, State: store.RunComplete, StartedAt: &start, FinishedAt: &end}, "", runURL)
			if !ok {
				t.Fatal("got no status for a complete run")
			}
			if got.Description != tt.want {
				t.Errorf("got %q, want %q", got.Description, tt.want)
			}
			if got.TargetURL != "https://forge.example.com/ci/runs/3" {
				t.Errorf("got target URL %q, want https://forge.example.com/ci/runs/3", got.TargetURL)
			}
		})
	}

	t.Run("finish before start shows no duration", func(t *testing.T) {
		before := start.Add(-time.Second)
		got, _ := toRunStatus(&store.Run{ID: 3, State: store.RunComplete, StartedAt: &start, FinishedAt: &before}, "", runURL)
		if got.Description != "Passed" {
			t.Errorf("got %q, want %q", got.Description, "Passed")
		}
	})
}

// TestFailedRunWithoutKind checks a failed run whose failure kind is empty.
// The run page and the badge count it as a pipeline failure, but the
// commit status called it an operational "error".
func TestFailedRunWithoutKind(t *testing.T) {
	run := &store.Run{ID: 4, State: store.RunFailed, Error: "job test failed"}
	got, ok := toRunStatus(run, "test", runURLFunc("https://forge.example.com/ci/"))
	if !ok {
		t.Fatal("got no status for a failed run")
	}
	want := Desired{forge.StateFailure, "Failed: test", "https://forge.example.com/ci/runs/4"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestReasonRepeatingLabel maps the reasons the queue really writes. A
// reason that repeats the label used to read twice, as in "Timed out: run
// timed out".
func TestReasonRepeatingLabel(t *testing.T) {
	runURL := runURLFunc("")
	tests := []struct {
		name string
		run  store.Run
		want string
	}{
		{"timed-out run", store.Run{State: store.RunFailed, FailureKind: store.FailureTimedOut, Error: "run timed out"}, "Run timed out"},
		{"pipeline failure without jobs", store.Run{State: store.RunFailed, FailureKind: store.FailurePipeline, Error: "pipeline failed"}, "Pipeline failed"},
		{"clone failure keeps its detail", store.Run{State: store.RunFailed, FailureKind: store.FailureCloneFailed, Error: "clone failed: authentication required"}, "Clone failed: authentication required"},
		{"crash reason is appended", store.Run{State: store.RunFailed, FailureKind: store.FailureProcessCrashed, Error: "runner signal: killed"}, "Runner crashed: runner signal: killed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := toRunStatus(&tt.run, "", runURL)
			if got.Description != tt.want {
				t.Errorf("got %q, want %q", got.Description, tt.want)
			}
		})
	}
}
