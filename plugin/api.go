package plugin

import (
	"math"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/octavo-ci/octavo/plugin/store"
)

// registerAPIRoutes adds the run list. The status UI serves one run, its
// log and its live websocket under /api/v1/runs/{id}.
func (s *Server) registerAPIRoutes(r *mux.Router) {
	r.HandleFunc("/api/v1/runs", s.handleListRuns).Methods(http.MethodGet)
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
		Runs       []any `json:"runs"`
		NextBefore uint  `json:"next_before,omitempty"`
	}{Runs: make([]any, 0, len(runs))}
	for i := range runs {
		out.Runs = append(out.Runs, s.ui.RunSummary(runs[i]))
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
