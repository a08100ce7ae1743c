package status

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/octavo-ci/octavo/plugin/forge"
	"github.com/octavo-ci/octavo/plugin/store"
)

// maxDescription is the longest description sent, in characters (runes).
// The limit is ours, not the forges': Gitea 1.26/1.27 and Forgejo 11.0.1
// stored and returned a 70000-character description whole. 140 characters
// keep a status one short line next to its link to the run page.
const maxDescription = 140

// Desired is the commit status octavo wants the forge to show.
type Desired struct {
	State       forge.StatusState
	Description string
	TargetURL   string
}

// Job states as store.Job.State holds them.
const (
	jobPending   = "pending"
	jobRunning   = "running"
	jobSucceeded = "succeeded"
	jobFailed    = "failed"
	jobSkipped   = "skipped"
)

// toRunStatus maps a run to its commit status. failedJob is the name of the
// run's first failed job ("" when unknown); runURL builds a run page URL.
// It returns false for a state that gets no status: a skipped run, or a
// state this version does not know.
func toRunStatus(run *store.Run, failedJob string, runURL func(uint) string) (Desired, bool) {
	d := Desired{TargetURL: runURL(run.ID)}

	switch run.State {
	case store.RunQueued:
		d.State, d.Description = forge.StatePending, "Queued"
	case store.RunActive:
		d.State, d.Description = forge.StatePending, "Running"
	case store.RunComplete:
		d.State, d.Description = forge.StateSuccess, "Passed"+took(run.StartedAt, run.FinishedAt)
	case store.RunFailed:
		d.State, d.Description = toFailure(run, failedJob)
	case store.RunReplaced:
		d.State = forge.StateWarning
		if run.ReplacedBy != nil {
			d.Description = "Replaced by run " + strconv.FormatUint(uint64(*run.ReplacedBy), 10)
			d.TargetURL = runURL(*run.ReplacedBy)
		} else {
			d.Description = "Replaced by a newer run"
		}
	case store.RunCanceled:
		d.State, d.Description = forge.StateError, "Canceled"
	case store.RunSkipped:
		// A commit without a pipeline file gets no status at all.
		return Desired{}, false
	default:
		return Desired{}, false
	}

	d.Description = cutDescription(d.Description)
	return d, true
}

// toFailure maps a failed run by its failure kind. Only a pipeline failure
// is the code's fault ("failure"); the other kinds are operational errors
// ("error"), so branch protection can tell them apart. A failed run without
// a kind counts as a pipeline failure, as on the run page and the badge.
func toFailure(run *store.Run, failedJob string) (forge.StatusState, string) {
	switch run.FailureKind {
	case store.FailurePipeline, store.FailureNone:
		switch {
		case failedJob != "":
			return forge.StateFailure, "Failed: " + failedJob
		case run.Error != "":
			return forge.StateFailure, withReason("Failed", run.Error)
		default:
			return forge.StateFailure, "Failed"
		}
	case store.FailureProcessCrashed:
		return forge.StateError, withReason("Runner crashed", run.Error)
	case store.FailureTimedOut:
		return forge.StateError, withReason("Timed out", run.Error)
	case store.FailureOrphaned:
		return forge.StateError, withReason("Interrupted by an octavo restart", run.Error)
	case store.FailureCloneFailed:
		return forge.StateError, withReason("Clone failed", run.Error)
	default:
		return forge.StateError, withReason("Failed", run.Error)
	}
}

// toJobStatus maps a job of run to the status of its own context. It
// returns false for a job state that gets no status.
func toJobStatus(run *store.Run, job *store.Job, runURL func(uint) string) (Desired, bool) {
	d := Desired{TargetURL: runURL(run.ID)}

	switch job.State {
	case jobPending:
		d.State, d.Description = forge.StatePending, "Waiting"
	case jobRunning:
		d.State, d.Description = forge.StatePending, "Running"
	case jobSucceeded:
		d.State, d.Description = forge.StateSuccess, "Passed"+took(job.StartedAt, job.FinishedAt)
	case jobFailed:
		if job.AllowFailure {
			// The run passes despite this job, so its context must not
			// block a merge either.
			d.State, d.Description = forge.StateSuccess, withReason("Failed, allowed to fail", job.Error)
		} else {
			d.State, d.Description = forge.StateFailure, withReason("Failed", job.Error)
		}
	case jobSkipped:
		// Never "skipped": Forgejo 11 does not know that state. Gitea counts
		// a skipped status as passing, and success keeps that meaning.
		d.State, d.Description = forge.StateSuccess, "Skipped"
	default:
		return Desired{}, false
	}

	d.Description = cutDescription(d.Description)
	return d, true
}

// withReason returns "label: reason", or label alone when reason is empty.
// A reason that already says what label says ("run timed out" for "Timed
// out") is returned alone, with its first letter made upper case.
func withReason(label, reason string) string {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return label
	}
	if strings.Contains(strings.ToLower(reason), strings.ToLower(label)) {
		first, size := utf8.DecodeRuneInString(reason)
		return string(unicode.ToUpper(first)) + reason[size:]
	}
	return label + ": " + reason
}

// took returns " in 1m12s" for the time between start and end, or "" when
// either is unknown. It rounds like the run page does: to the millisecond
// under a second, to a tenth of a second under a minute, and to the second
// above.
func took(start, end *time.Time) string {
	if start == nil || end == nil || end.Before(*start) {
		return ""
	}
	d := end.Sub(*start)
	switch {
	case d >= time.Minute:
		d = d.Round(time.Second)
	case d >= time.Second:
		d = d.Round(100 * time.Millisecond)
	default:
		d = d.Round(time.Millisecond)
	}
	return " in " + d.String()
}

// ansiEscape matches a terminal control sequence such as a colour code.
var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]`)

// cutDescription makes s one line of valid UTF-8 without terminal escape
// sequences or other control characters, and cuts it to maxDescription
// characters on a rune boundary, ending a cut text with "…".
func cutDescription(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = ansiEscape.ReplaceAllString(s, "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= maxDescription {
		return s
	}

	n := 0
	for i := range s {
		if n == maxDescription-1 {
			return strings.TrimRight(s[:i], " ") + "…"
		}
		n++
	}
	return s
}

// runURLFunc returns the function that builds a run page URL,
// PUBLIC_URL/runs/ID, keeping any path prefix of base. An empty base
// gives empty URLs.
func runURLFunc(base string) func(uint) string {
	if base == "" {
		return func(uint) string { return "" }
	}
	base = strings.TrimSuffix(base, "/") + "/runs/"
	return func(id uint) string { return base + strconv.FormatUint(uint64(id), 10) }
}

// String returns the status as "state: description" for logs and tests.
func (d Desired) String() string {
	return fmt.Sprintf("%s: %s", d.State, d.Description)
}
