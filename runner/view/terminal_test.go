package view

import (
	"strings"
	"testing"

	"github.com/octavo-ci/octavo/schema"
)

func feed(t *testing.T, term *Terminal) {
	t.Helper()
	evs := []any{
		&schema.RunStarted{Envelope: schema.Envelope{AtMs: 1000}, Jobs: []schema.JobNode{{ID: "test", Inputs: []string{"octavo/push"}}, {ID: "deploy", Inputs: []string{"test"}}}},
		&schema.JobStarted{Envelope: schema.Envelope{AtMs: 1000}, JobID: "test"},
		&schema.ShStarted{Envelope: schema.Envelope{AtMs: 1000}, JobID: "test", Seq: 1, Cmd: "go test ./..."},
		&schema.ShOutput{Envelope: schema.Envelope{AtMs: 1100}, JobID: "test", Seq: 1, Stream: schema.Stderr, Line: "FAIL example"},
		&schema.ShFinished{Envelope: schema.Envelope{AtMs: 2500}, JobID: "test", Seq: 1, ExitCode: 1},
		&schema.JobFinished{Envelope: schema.Envelope{AtMs: 2500}, JobID: "test", Outcome: schema.JobFailed, Error: "ci.star:3: ctx.sh step 1 exited with code 1"},
		&schema.JobFinished{Envelope: schema.Envelope{AtMs: 2500}, JobID: "deploy", Outcome: schema.JobSkipped, Error: `input job "test" failed`},
		&schema.RunFinished{Envelope: schema.Envelope{AtMs: 3000}, Outcome: schema.RunPipelineFailure, Error: `job "test" failed`},
	}
	for _, ev := range evs {
		if err := term.WriteEvent(ev); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTerminalPlainOutput(t *testing.T) {
	var out strings.Builder
	feed(t, NewTerminal(&out, false))

	want := `Running 2 jobs
[test  ] ▶ started
[test  ] $ go test ./...
[test  ]   FAIL example
[test  ]   step 1 exited with code 1 (1.5s)
[test  ] ✗ failed (1.5s): ci.star:3: ctx.sh step 1 exited with code 1
[deploy] - skipped: input job "test" failed

Summary
  ✗ test    failed         1.5s
  - deploy  skipped
Run failed in 2s: job "test" failed
`
	if got := out.String(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}

func TestTerminalColourOutput(t *testing.T) {
	var out strings.Builder
	feed(t, NewTerminal(&out, true))

	for _, want := range []string{ansiYellow + "FAIL example" + ansiReset, ansiRed + "✗ failed", ansiRed + ansiBold + "Run failed in 2s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("coloured output lacks %q:\n%q", want, out.String())
		}
	}
}
