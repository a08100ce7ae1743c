// Package view renders the event stream for a person at a terminal: a line
// per job and step header, every output line prefixed with its job id,
// durations, and a summary table at the end.
package view

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/octavo-ci/octavo/schema"
)

// ANSI SGR sequences used when colour is on.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
)

// Terminal is an events.Writer that prints a readable run log to w. It
// relies on the sink to serialise calls. Output is not buffered, so Flush
// does nothing.
type Terminal struct {
	w     io.Writer
	color bool

	jobs     []schema.JobNode
	width    int
	runStart int64
	jobStart map[string]int64
	results  map[string]jobSummary
	stepAt   map[stepKey]int64
}

type stepKey struct {
	job string
	seq int
}

type jobSummary struct {
	outcome  schema.JobOutcome
	duration time.Duration
	started  bool
}

// NewTerminal returns a Terminal writing to w, with ANSI colours when color
// is true.
func NewTerminal(w io.Writer, color bool) *Terminal {
	return &Terminal{
		w:        w,
		color:    color,
		jobStart: map[string]int64{},
		results:  map[string]jobSummary{},
		stepAt:   map[stepKey]int64{},
	}
}

// Flush does nothing, because Terminal writes every line at once.
func (t *Terminal) Flush() error { return nil }

// WriteEvent prints ev.
func (t *Terminal) WriteEvent(ev any) error {
	switch e := ev.(type) {
	case *schema.RunStarted:
		t.runStart = e.AtMs
		t.jobs = e.Jobs
		for _, j := range e.Jobs {
			t.width = max(t.width, len(j.ID))
		}
		if len(e.Jobs) > 0 {
			return t.printf("%s\n", t.paint(ansiBold, fmt.Sprintf("Running %d %s", len(e.Jobs), plural(len(e.Jobs), "job", "jobs"))))
		}
	case *schema.JobStarted:
		t.jobStart[e.JobID] = e.AtMs
		return t.jobLine(e.JobID, t.paint(ansiCyan, "▶ started"))
	case *schema.ShStarted:
		key := stepKey{e.JobID, e.Seq}
		t.stepAt[key] = e.AtMs
		return t.jobLine(e.JobID, t.paint(ansiBold, "$ "+e.Cmd))
	case *schema.ShOutput:
		line := e.Line
		if e.Stream == schema.Stderr {
			line = t.paint(ansiYellow, line)
		}
		return t.jobLine(e.JobID, "  "+line)
	case *schema.ShFinished:
		took := since(t.stepAt[stepKey{e.JobID, e.Seq}], e.AtMs)
		text := fmt.Sprintf("step %d exited with code %d (%s)", e.Seq, e.ExitCode, took)
		if e.Error != "" {
			text = fmt.Sprintf("step %d: %s (%s)", e.Seq, e.Error, took)
		}
		if e.ExitCode == 0 {
			return t.jobLine(e.JobID, t.paint(ansiDim, "  "+text))
		}
		return t.jobLine(e.JobID, t.paint(ansiRed, "  "+text))
	case *schema.Log:
		msg := e.Message
		switch e.Level {
		case schema.LevelWarn:
			msg = t.paint(ansiYellow, "warning: "+msg)
		case schema.LevelError:
			msg = t.paint(ansiRed, "error: "+msg)
		}
		if e.JobID == "" {
			return t.printf("%s\n", msg)
		}
		return t.jobLine(e.JobID, msg)
	case *schema.JobFinished:
		start, started := t.jobStart[e.JobID]
		took := time.Duration(0)
		if started {
			took = time.Duration(e.AtMs-start) * time.Millisecond
		}
		t.results[e.JobID] = jobSummary{outcome: e.Outcome, duration: took, started: started}
		text := fmt.Sprintf("%s %s", symbol(e.Outcome), e.Outcome)
		if started {
			text += fmt.Sprintf(" (%s)", took)
		}
		if e.Error != "" {
			text += ": " + e.Error
		}
		return t.jobLine(e.JobID, t.paint(outcomeColor(e.Outcome), text))
	case *schema.RunFinished:
		return t.summary(e)
	}
	return nil
}

// summary prints one line per job and the run result.
func (t *Terminal) summary(e *schema.RunFinished) error {
	var b strings.Builder
	if len(t.jobs) > 0 {
		b.WriteString("\n" + t.paint(ansiBold, "Summary") + "\n")
	}
	for _, j := range t.jobs {
		r, ok := t.results[j.ID]
		outcome := string(r.outcome)
		if !ok {
			outcome = "not run"
		}
		line := fmt.Sprintf("  %s %-*s  %-9s", symbol(r.outcome), t.width, j.ID, outcome)
		if r.started {
			line += fmt.Sprintf("  %8s", r.duration)
		}
		if j.AllowFailure && r.outcome == schema.JobFailed {
			line += "  (failure allowed)"
		}
		b.WriteString(t.paint(outcomeColor(r.outcome), strings.TrimRight(line, " ")) + "\n")
	}

	took := since(t.runStart, e.AtMs)
	if e.Outcome == schema.RunSuccess {
		b.WriteString(t.paint(ansiGreen+ansiBold, fmt.Sprintf("Run succeeded in %s", took)) + "\n")
	} else {
		b.WriteString(t.paint(ansiRed+ansiBold, fmt.Sprintf("Run failed in %s: %s", took, e.Error)) + "\n")
	}
	return t.printf("%s", b.String())
}

func (t *Terminal) jobLine(id, text string) error {
	prefix := fmt.Sprintf("[%-*s]", t.width, id)
	return t.printf("%s %s\n", t.paint(ansiDim, prefix), text)
}

func (t *Terminal) printf(format string, args ...any) error {
	_, err := fmt.Fprintf(t.w, format, args...)
	return err
}

func (t *Terminal) paint(code, s string) string {
	if !t.color || code == "" {
		return s
	}
	return code + s + ansiReset
}

func since(fromMs, toMs int64) time.Duration {
	return time.Duration(toMs-fromMs) * time.Millisecond
}

func symbol(o schema.JobOutcome) string {
	switch o {
	case schema.JobSucceeded:
		return "✓"
	case schema.JobFailed:
		return "✗"
	case schema.JobSkipped:
		return "-"
	default:
		return " "
	}
}

func outcomeColor(o schema.JobOutcome) string {
	switch o {
	case schema.JobSucceeded:
		return ansiGreen
	case schema.JobFailed:
		return ansiRed
	case schema.JobSkipped:
		return ansiDim
	default:
		return ""
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
