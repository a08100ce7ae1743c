package ui

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/octavo-ci/octavo/plugin/live"
	"github.com/octavo-ci/octavo/plugin/store"
)

// Limits of the events API.
const (
	defaultEventLimit = 500
	maxEventLimit     = 5000
)

func (u *UI) registerAPIRoutes(r *mux.Router) {
	r.HandleFunc("/api/v1/runs/{id:[0-9]+}", u.handleRunJSON).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/api/v1/runs/{id:[0-9]+}/events", u.handleEvents).Methods(http.MethodGet, http.MethodHead)
	// The log API is the same listing under the name the run API documents,
	// so both paths accept the same parameters and page the same way.
	r.HandleFunc("/api/v1/runs/{id:[0-9]+}/log", u.handleEvents).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/api/v1/runs/{id:[0-9]+}/live", u.handleLive).Methods(http.MethodGet)
}

// runJSON is the run API's response body. The fields from id to attempts
// are always present, and null or empty when unset. DispatchedAt and
// ResolvedAt repeat StartedAt and FinishedAt under the documented names.
type runJSON struct {
	ID           uint       `json:"id"`
	Repo         string     `json:"repo"`
	Ref          string     `json:"ref"`
	SHA          string     `json:"sha"`
	Event        string     `json:"event"`
	State        string     `json:"state"`
	FailureKind  string     `json:"failure_kind"`
	CreatedAt    time.Time  `json:"created_at"`
	DispatchedAt *time.Time `json:"dispatched_at"`
	ResolvedAt   *time.Time `json:"resolved_at"`
	ReplacedBy   *uint      `json:"replaced_by"`
	Attempts     int        `json:"attempts"`
	Branch       string     `json:"branch,omitempty"`
	Tag          string     `json:"tag,omitempty"`
	CommitURL    string     `json:"commit_url,omitempty"`
	Pusher       string     `json:"pusher,omitempty"`
	Message      string     `json:"message,omitempty"`
	StateText    string     `json:"state_text"`
	StateClass   string     `json:"state_class"`
	Error        string     `json:"error,omitempty"`
	LastSeq      int64      `json:"last_seq"`
	URL          string     `json:"url"`
	StartedAt    *time.Time `json:"started_at,omitempty"`
	FinishedAt   *time.Time `json:"finished_at,omitempty"`
	Jobs         []jobJSON  `json:"jobs"`
}

type jobJSON struct {
	Name         string     `json:"name"`
	Inputs       []string   `json:"inputs"`
	AllowFailure bool       `json:"allow_failure"`
	State        string     `json:"state"`
	Error        string     `json:"error,omitempty"`
	StartedAt    *time.Time `json:"started_at,omitempty"`
	FinishedAt   *time.Time `json:"finished_at,omitempty"`
	Steps        []stepJSON `json:"steps"`
}

type stepJSON struct {
	Seq        int        `json:"seq"`
	Cmd        string     `json:"cmd"`
	ExitCode   *int       `json:"exit_code"`
	Error      string     `json:"error,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// eventsJSON is the events API's response body. Events are in ascending
// Seq order; LastSeq is the run's highest stored Seq when the page was read.
type eventsJSON struct {
	RunID   uint           `json:"run_id"`
	State   string         `json:"state"`
	LastSeq int64          `json:"last_seq"`
	Events  []live.Message `json:"events"`
}

type errorJSON struct {
	Error string `json:"error"`
}

func (u *UI) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (u *UI) jsonNotFound(w http.ResponseWriter) {
	u.writeJSON(w, http.StatusNotFound, errorJSON{Error: "not found"})
}

// publicRun reads the run named by the {id} route variable and writes a 404
// or 500 itself when it returns false.
func (u *UI) publicRun(w http.ResponseWriter, r *http.Request) (store.Run, bool) {
	id, ok := parseRunID(mux.Vars(r)["id"])
	if !ok {
		u.jsonNotFound(w)
		return store.Run{}, false
	}
	run, found, err := u.store.PublicRun(r.Context(), id)
	if err != nil {
		u.logger.ErrorContext(r.Context(), "read run failed", "run_id", id, "err", err)
		u.writeJSON(w, http.StatusInternalServerError, errorJSON{Error: "internal server error"})
		return store.Run{}, false
	}
	if !found {
		u.jsonNotFound(w)
		return store.Run{}, false
	}
	return run, true
}

func (u *UI) handleRunJSON(w http.ResponseWriter, r *http.Request) {
	run, ok := u.publicRun(w, r)
	if !ok {
		return
	}
	jobs, steps, err := u.store.RunJobsAndSteps(r.Context(), run.ID)
	if err != nil {
		u.logger.ErrorContext(r.Context(), "read jobs failed", "run_id", run.ID, "err", err)
		u.writeJSON(w, http.StatusInternalServerError, errorJSON{Error: "internal server error"})
		return
	}
	u.writeJSON(w, http.StatusOK, u.toRunJSON(run, jobs, steps))
}

func (u *UI) toRunJSON(run store.Run, jobs []store.Job, steps []store.Step) runJSON {
	out := runJSON{
		ID:           run.ID,
		Repo:         run.Repo.FullName,
		Ref:          run.Ref,
		SHA:          run.SHA,
		Event:        runEvent(run),
		State:        string(run.State),
		FailureKind:  string(run.FailureKind),
		CreatedAt:    run.CreatedAt,
		DispatchedAt: run.StartedAt,
		ResolvedAt:   run.FinishedAt,
		ReplacedBy:   run.ReplacedBy,
		Attempts:     run.Attempt,
		Branch:       run.Branch,
		Tag:          run.Tag,
		CommitURL:    u.commitURL(run.Repo, run.SHA),
		Pusher:       run.Pusher,
		Message:      run.Message,
		StateText:    stateText(run),
		StateClass:   stateClass(run),
		Error:        run.Error,
		LastSeq:      run.LastSeq,
		URL:          u.absolute(u.link("runs/" + strconv.FormatUint(uint64(run.ID), 10))),
		StartedAt:    run.StartedAt,
		FinishedAt:   run.FinishedAt,
		Jobs:         make([]jobJSON, 0, len(jobs)),
	}
	byName := make(map[string]int, len(jobs))
	for _, j := range jobs {
		byName[j.Name] = len(out.Jobs)
		inputs := jobInputs(j)
		if inputs == nil {
			inputs = []string{}
		}
		out.Jobs = append(out.Jobs, jobJSON{
			Name: j.Name, Inputs: inputs, AllowFailure: j.AllowFailure, State: j.State, Error: j.Error,
			StartedAt: j.StartedAt, FinishedAt: j.FinishedAt, Steps: []stepJSON{},
		})
	}
	for _, s := range steps {
		i, ok := byName[s.JobName]
		if !ok {
			continue
		}
		out.Jobs[i].Steps = append(out.Jobs[i].Steps, stepJSON{
			Seq: s.Seq, Cmd: s.Cmd, ExitCode: s.ExitCode, Error: s.Error, StartedAt: s.StartedAt, FinishedAt: s.FinishedAt,
		})
	}
	return out
}

// runSummaryJSON is a run in a list of runs: the run API's body without
// jobs. The outer Jobs field hides the embedded one, so nil omits it.
type runSummaryJSON struct {
	runJSON
	Jobs []jobJSON `json:"jobs,omitempty"`
}

// RunSummary returns run as the run API shows it, without its jobs, so a
// list of runs and a single run share one shape.
func (u *UI) RunSummary(run store.Run) any {
	return runSummaryJSON{runJSON: u.toRunJSON(run, nil, nil)}
}

// runEvent names the kind of push that created run: "tag" for a tag push,
// else "push".
func runEvent(run store.Run) string {
	if run.Tag != "" {
		return "tag"
	}
	return "push"
}

// absolute turns a path from [UI.link] into a URL on PublicURL's host, or
// leaves it as a path when PublicURL is not set.
func (u *UI) absolute(path string) string {
	if u.publicURL == nil || u.publicURL.Host == "" {
		return path
	}
	return u.publicURL.Scheme + "://" + u.publicURL.Host + path
}

// handleEvents serves a page of a run's stored events. Parameters: after
// (events with a greater Seq, default 0), before (events with a smaller Seq;
// without after it returns the last page before it), limit (1-5000, default
// 500) and job (only that job's events; job= with no value selects the
// run's own events).
func (u *UI) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page := store.EventPage{Limit: defaultEventLimit}

	var err error
	if page.After, err = intParam(q.Get("after"), 0, 0); err != nil {
		u.writeJSON(w, http.StatusBadRequest, errorJSON{Error: "invalid after=" + strconv.Quote(q.Get("after")) + ": want a sequence number of 0 or more"})
		return
	}
	if page.Before, err = intParam(q.Get("before"), 0, 1); err != nil {
		u.writeJSON(w, http.StatusBadRequest, errorJSON{Error: "invalid before=" + strconv.Quote(q.Get("before")) + ": want a sequence number of 1 or more"})
		return
	}
	limit, err := intParam(q.Get("limit"), defaultEventLimit, 1)
	if err != nil || limit > maxEventLimit {
		u.writeJSON(w, http.StatusBadRequest, errorJSON{Error: "invalid limit=" + strconv.Quote(q.Get("limit")) + ": want 1 to " + strconv.Itoa(maxEventLimit)})
		return
	}
	page.Limit = int(limit)
	if q.Has("job") {
		job := q.Get("job")
		page.Job = &job
	}
	page.Tail = page.Before > 0 && !q.Has("after")

	run, ok := u.publicRun(w, r)
	if !ok {
		return
	}
	page.RunID = run.ID
	events, err := u.store.PageRunEvents(r.Context(), page)
	if err != nil {
		u.logger.ErrorContext(r.Context(), "read events failed", "run_id", run.ID, "err", err)
		u.writeJSON(w, http.StatusInternalServerError, errorJSON{Error: "internal server error"})
		return
	}

	out := eventsJSON{RunID: run.ID, State: string(run.State), LastSeq: run.LastSeq, Events: make([]live.Message, len(events))}
	for i, ev := range events {
		out.Events[i] = live.NewMessage(ev)
	}
	u.writeJSON(w, http.StatusOK, out)
}

// intParam parses a decimal query parameter; empty yields def, and a value
// below minimum is an error.
func intParam(s string, def, minimum int64) (int64, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, err
	}
	if n < minimum {
		return 0, strconv.ErrRange
	}
	return n, nil
}
