package plugin

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/octavo-ci/octavo/plugin/store"
)

// apiLogLimit is the maximum number of events one log page returns.
const apiLogLimit = 1000

// registerAPIRoutes adds the read API. The status UI may register the same
// paths first; gorilla/mux then uses its handlers.
func (s *Server) registerAPIRoutes(r *mux.Router) {
	r.HandleFunc("/api/v1/runs", s.handleListRuns).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/runs/{id:[0-9]+}", s.handleGetRun).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/runs/{id:[0-9]+}/log", s.handleRunLog).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/runs/{id:[0-9]+}/events", s.handleRunLog).Methods(http.MethodGet)
}

// apiRun is a run as the API returns it.
type apiRun struct {
	ID           uint       `json:"id"`
	Repo         string     `json:"repo"`
	Ref          string     `json:"ref"`
	Branch       string     `json:"branch,omitempty"`
	Tag          string     `json:"tag,omitempty"`
	SHA          string     `json:"sha"`
	Event        string     `json:"event"`
	State        string     `json:"state"`
	FailureKind  string     `json:"failure_kind"`
	Error        string     `json:"error,omitempty"`
	Message      string     `json:"message,omitempty"`
	Pusher       string     `json:"pusher,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	DispatchedAt *time.Time `json:"dispatched_at"`
	ResolvedAt   *time.Time `json:"resolved_at"`
	ReplacedBy   *uint      `json:"replaced_by"`
	Attempts     int        `json:"attempts"`
	LastSeq      int64      `json:"last_seq"`
	URL          string     `json:"url"`
	Jobs         []apiJob   `json:"jobs,omitempty"`
}

type apiJob struct {
	Name       string     `json:"name"`
	State      string     `json:"state"`
	Error      string     `json:"error,omitempty"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Steps      []apiStep  `json:"steps"`
}

type apiStep struct {
	Seq        int        `json:"seq"`
	Cmd        string     `json:"cmd"`
	ExitCode   *int       `json:"exit_code"`
	Error      string     `json:"error,omitempty"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

func (s *Server) toAPIRun(r *store.Run) apiRun {
	event := "push"
	if r.Tag != "" {
		event = "tag"
	}
	return apiRun{
		ID: r.ID, Repo: r.Repo.FullName, Ref: r.Ref, Branch: r.Branch, Tag: r.Tag, SHA: r.SHA,
		Event: event, State: string(r.State), FailureKind: string(r.FailureKind), Error: r.Error,
		Message: r.Message, Pusher: r.Pusher, CreatedAt: r.CreatedAt, DispatchedAt: r.StartedAt,
		ResolvedAt: r.FinishedAt, ReplacedBy: r.ReplacedBy, Attempts: r.Attempt, LastSeq: r.LastSeq,
		URL: s.RunURL(r.ID),
	}
}

// RunURL returns the absolute URL of a run's page under the public URL;
// commit statuses link to it.
func (s *Server) RunURL(id uint) string {
	return s.cfg.PublicURL.JoinPath("runs", strconv.FormatUint(uint64(id), 10)).String()
}

// handleListRuns returns runs newest first. Query: repo=OWNER/NAME,
// ref=REF (full ref or branch), before=ID (the next page starts below
// it), limit=N (1..100, default 20). Runs of private repositories are
// left out.
func (s *Server) handleListRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.RunFilter{Repo: q.Get("repo"), Ref: q.Get("ref")}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid before="+v+"; use a run id")
			return
		}
		// SQL integers are signed 64-bit, so a larger id bounds nothing.
		if n <= math.MaxInt64 {
			f.BeforeID = uint(n)
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeError(w, http.StatusBadRequest, "invalid limit="+v+"; use 1 to 100")
			return
		}
		f.Limit = n
	}

	runs, more, err := s.listPublicRuns(r, f)
	if err != nil {
		requestLogger(r.Context(), s.log).ErrorContext(r.Context(), "list runs", "err", err)
		writeError(w, http.StatusInternalServerError, "could not read runs")
		return
	}
	out := struct {
		Runs       []apiRun `json:"runs"`
		NextBefore uint     `json:"next_before,omitempty"`
	}{Runs: make([]apiRun, 0, len(runs))}
	for i := range runs {
		out.Runs = append(out.Runs, s.toAPIRun(&runs[i]))
	}
	if more {
		out.NextBefore = runs[len(runs)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

// listScanPages bounds how many store pages one list request reads while
// it skips runs of private repositories.
const listScanPages = 20

// listPublicRuns returns up to f.Limit (default 20) runs of public
// repositories, newest first, and whether older ones may follow. Private
// runs are skipped by reading further pages, so a page is short only at
// the end and never points at a private run.
func (s *Server) listPublicRuns(r *http.Request, f store.RunFilter) ([]store.Run, bool, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 20
	}
	f.Limit = 100
	var out []store.Run
	for range listScanPages {
		runs, err := store.ListRuns(r.Context(), s.st.DB, f)
		if err != nil {
			return nil, false, err
		}
		for i := range runs {
			if runs[i].Repo.Private {
				continue
			}
			if len(out) == limit {
				return out, true, nil
			}
			out = append(out, runs[i])
		}
		if len(runs) < f.Limit {
			return out, false, nil
		}
		f.BeforeID = runs[len(runs)-1].ID
	}
	// NOTE: after listScanPages pages of mostly private runs the list ends
	// early; a client sees fewer runs rather than a private run's id.
	return out, false, nil
}

// publicRun reads the run of the {id} route variable and writes a 404 for
// a missing run or one of a private repository.
func (s *Server) publicRun(w http.ResponseWriter, r *http.Request) (*store.Run, bool) {
	id, err := strconv.ParseUint(mux.Vars(r)["id"], 10, 64)
	if err != nil {
		writeError(w, http.StatusNotFound, "no such run")
		return nil, false
	}
	run, err := store.GetRun(r.Context(), s.st.DB, uint(id))
	if errors.Is(err, store.ErrNotFound) || (err == nil && run.Repo.Private) {
		writeError(w, http.StatusNotFound, "no such run")
		return nil, false
	}
	if err != nil {
		requestLogger(r.Context(), s.log).ErrorContext(r.Context(), "read run", "run_id", id, "err", err)
		writeError(w, http.StatusInternalServerError, "could not read the run")
		return nil, false
	}
	return run, true
}

func (s *Server) handleGetRun(w http.ResponseWriter, r *http.Request) {
	run, ok := s.publicRun(w, r)
	if !ok {
		return
	}
	jobs, steps, err := store.JobsAndSteps(r.Context(), s.st.DB, run.ID)
	if err != nil {
		requestLogger(r.Context(), s.log).ErrorContext(r.Context(), "read jobs", "run_id", run.ID, "err", err)
		writeError(w, http.StatusInternalServerError, "could not read the run's jobs")
		return
	}

	out := s.toAPIRun(run)
	byJob := map[string]int{}
	for _, j := range jobs {
		byJob[j.Name] = len(out.Jobs)
		out.Jobs = append(out.Jobs, apiJob{Name: j.Name, State: j.State, Error: j.Error, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt, Steps: []apiStep{}})
	}
	for _, st := range steps {
		i, ok := byJob[st.JobName]
		if !ok {
			continue
		}
		out.Jobs[i].Steps = append(out.Jobs[i].Steps, apiStep{Seq: st.Seq, Cmd: st.Cmd, ExitCode: st.ExitCode, Error: st.Error, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt})
	}
	writeJSON(w, http.StatusOK, out)
}

// handleRunLog returns up to apiLogLimit events with seq > after, each as
// the runner wrote it plus its seq.
func (s *Server) handleRunLog(w http.ResponseWriter, r *http.Request) {
	run, ok := s.publicRun(w, r)
	if !ok {
		return
	}
	var after int64
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "invalid after="+v+"; use a sequence number of 0 or more")
			return
		}
		after = n
	}
	evs, err := store.EventsAfter(r.Context(), s.st.DB, run.ID, after, apiLogLimit)
	if err != nil {
		requestLogger(r.Context(), s.log).ErrorContext(r.Context(), "read run events", "run_id", run.ID, "err", err)
		writeError(w, http.StatusInternalServerError, "could not read the run's events")
		return
	}

	type apiEvent struct {
		Seq   int64           `json:"seq"`
		Event json.RawMessage `json:"event"`
	}
	out := struct {
		RunID  uint       `json:"run_id"`
		State  string     `json:"state"`
		Events []apiEvent `json:"events"`
	}{RunID: run.ID, State: string(run.State), Events: make([]apiEvent, 0, len(evs))}
	for _, e := range evs {
		out.Events = append(out.Events, apiEvent{Seq: e.Seq, Event: json.RawMessage(e.Data)})
	}
	writeJSON(w, http.StatusOK, out)
}
