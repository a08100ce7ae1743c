package ui

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/octavo-ci/octavo/plugin/live"
	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/schema"
	"github.com/octavo-ci/octavo/web"
)

// Page sizes.
const (
	// runsPerPage is the number of runs listed on a repository page.
	runsPerPage = 50
	// trendRuns is how many finished runs the duration plot shows.
	trendRuns = 40
	// tailEvents is how many of a run's last events the run page renders;
	// earlier ones load on demand, so a huge log costs the same.
	tailEvents = 1000
)

// contentSecurityPolicy allows only the page's own script and stylesheet,
// so markup that slipped into a log line could still run no script. Inline
// style attributes stay allowed because log lines colour text with them.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (u *UI) registerPageRoutes(r *mux.Router) {
	r.HandleFunc("/", u.handleIndex).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/repos/{owner}/{name}", u.handleRepo).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/runs/{id:[0-9]+}", u.handleRun).Methods(http.MethodGet, http.MethodHead)
}

func (u *UI) common() common {
	return common{Base: u.base, Version: web.Version}
}

// render executes a page into a buffer first, so that a template error
// becomes a clean 500 instead of half a page.
func (u *UI) render(w http.ResponseWriter, r *http.Request, page string, data any) {
	var buf bytes.Buffer
	if err := u.pages[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		u.serverError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	_, _ = w.Write(buf.Bytes())
}

type indexRow struct {
	FullName string
	URL      string
	Branch   string
	Run      *runView
}

func (u *UI) handleIndex(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	repos, err := u.store.ListPublicRepos(ctx)
	if err != nil {
		u.serverError(w, r, err)
		return
	}

	rows := make([]indexRow, 0, len(repos))
	for _, repo := range repos {
		row := indexRow{FullName: repo.FullName, URL: u.repoURL(repo), Branch: repo.DefaultBranch}
		runs, err := u.store.ListRepoRuns(ctx, store.RepoRunFilter{
			RepoID: repo.ID,
			Branch: repo.DefaultBranch,
			States: []store.RunState{store.RunQueued, store.RunActive, store.RunComplete, store.RunFailed, store.RunCanceled},
			Limit:  1,
		})
		if err != nil {
			u.serverError(w, r, err)
			return
		}
		if len(runs) == 1 {
			v := u.toRunView(runs[0], repo)
			row.Run = &v
			if row.Branch == "" {
				row.Branch = refName(runs[0])
			}
		}
		rows = append(rows, row)
	}

	u.render(w, r, "index", struct {
		common
		Repos []indexRow
	}{u.common(), rows})
}

func (u *UI) repoURL(repo store.Repo) string {
	return u.link("repos/" + escapeFullName(repo.FullName))
}

func (u *UI) handleRepo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	vars := mux.Vars(r)
	repo, found, err := u.store.PublicRepo(ctx, vars["owner"], vars["name"])
	if err != nil {
		u.serverError(w, r, err)
		return
	}
	if !found {
		u.notFound(w)
		return
	}

	branch := r.URL.Query().Get("branch")
	var beforeID uint
	if s := r.URL.Query().Get("before"); s != "" {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			http.Error(w, "invalid before="+strconv.Quote(s)+": want a run id", http.StatusBadRequest)
			return
		}
		beforeID = uint(n)
	}

	runs, err := u.store.ListRepoRuns(ctx, store.RepoRunFilter{RepoID: repo.ID, Branch: branch, BeforeID: beforeID, Limit: runsPerPage})
	if err != nil {
		u.serverError(w, r, err)
		return
	}
	finished, err := u.store.ListRepoRuns(ctx, store.RepoRunFilter{
		RepoID: repo.ID, Branch: branch, States: []store.RunState{store.RunComplete, store.RunFailed}, Limit: trendRuns,
	})
	if err != nil {
		u.serverError(w, r, err)
		return
	}
	branches, err := u.store.RunBranches(ctx, repo.ID)
	if err != nil {
		u.serverError(w, r, err)
		return
	}

	views := make([]runView, len(runs))
	for i, run := range runs {
		views[i] = u.toRunView(run, repo)
	}
	var older string
	if len(runs) == runsPerPage {
		q := url.Values{}
		if branch != "" {
			q.Set("branch", branch)
		}
		q.Set("before", strconv.FormatUint(uint64(runs[len(runs)-1].ID), 10))
		older = u.repoURL(repo) + "?" + q.Encode()
	}
	trend, trendCount := u.trendSVG(finished)

	u.render(w, r, "repo", struct {
		common
		Repo       store.Repo
		RepoURL    string
		Branch     string
		Branches   []string
		Runs       []runView
		OlderURL   string
		Trend      any
		TrendCount int
	}{u.common(), repo, u.repoURL(repo), branch, branches, views, older, trend, trendCount})
}

// paneView is one log pane of the run page: the run's own events when Job
// is empty, else one job with its steps.
type paneView struct {
	Job        string
	ID         string
	State      string
	StateClass string
	Inputs     string
	Error      string
	Duration   string
	Steps      []stepView
	Lines      []lineView
}

type stepView struct {
	Seq       int
	Cmd       string
	Exit      string
	ExitClass string
	Duration  string
}

type lineView struct {
	Seq   int64
	Class string
	HTML  any
}

func (u *UI) handleRun(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, ok := parseRunID(mux.Vars(r)["id"])
	if !ok {
		u.notFound(w)
		return
	}
	run, found, err := u.store.PublicRun(ctx, id)
	if err != nil {
		u.serverError(w, r, err)
		return
	}
	if !found {
		u.notFound(w)
		return
	}
	jobs, steps, err := u.store.RunJobsAndSteps(ctx, run.ID)
	if err != nil {
		u.serverError(w, r, err)
		return
	}
	events, err := u.store.PageRunEvents(ctx, store.EventPage{RunID: run.ID, Limit: tailEvents, Tail: true})
	if err != nil {
		u.serverError(w, r, err)
		return
	}

	panes, order := u.buildPanes(jobs, steps)
	var lastSeq, tailStart int64
	for _, ev := range events {
		lastSeq = ev.Seq
		if tailStart == 0 {
			tailStart = ev.Seq
		}
		h, ok := live.LineHTML(ev)
		if !ok {
			continue
		}
		p, ok := panes[ev.JobName]
		if !ok {
			p = &paneView{Job: ev.JobName, ID: ev.JobName}
			panes[ev.JobName] = p
			order = append(order, ev.JobName)
		}
		p.Lines = append(p.Lines, lineView{Seq: ev.Seq, Class: lineClass(ev), HTML: trustedHTML(h)})
	}
	ordered := make([]paneView, 0, len(order))
	for _, name := range order {
		ordered = append(ordered, *panes[name])
	}

	idText := strconv.FormatUint(uint64(run.ID), 10)
	u.render(w, r, "run", struct {
		common
		Repo       store.Repo
		RepoURL    string
		Run        runView
		Graph      any
		Panes      []paneView
		LiveURL    string
		EventsURL  string
		APIURL     string
		LastSeq    int64
		TailStart  int64
		HasEarlier bool
		Final      bool
	}{
		common:     u.common(),
		Repo:       run.Repo,
		RepoURL:    u.repoURL(run.Repo),
		Run:        u.toRunView(run, run.Repo),
		Graph:      graphSVG(jobs),
		Panes:      ordered,
		LiveURL:    u.link("api/v1/runs/" + idText + "/live"),
		EventsURL:  u.link("api/v1/runs/" + idText + "/events"),
		APIURL:     u.link("api/v1/runs/" + idText),
		LastSeq:    lastSeq,
		TailStart:  tailStart,
		HasEarlier: tailStart > 1,
		Final:      run.State.Final(),
	})
}

// buildPanes returns a pane for the run's own events and one per job, in
// pipeline order.
func (u *UI) buildPanes(jobs []store.Job, steps []store.Step) (map[string]*paneView, []string) {
	panes := map[string]*paneView{"": {ID: "run"}}
	order := []string{""}
	for _, j := range jobs {
		inputs := jobInputs(j)
		p := &paneView{
			Job:        j.Name,
			ID:         j.Name,
			State:      j.State,
			StateClass: jobStateClass(j.State),
			Error:      j.Error,
			Duration:   formatDuration(j.StartedAt, j.FinishedAt),
		}
		for i, in := range inputs {
			if i > 0 {
				p.Inputs += ", "
			}
			p.Inputs += in
		}
		panes[j.Name] = p
		order = append(order, j.Name)
	}
	for _, s := range steps {
		p, ok := panes[s.JobName]
		if !ok {
			continue
		}
		v := stepView{Seq: s.Seq, Cmd: s.Cmd, Exit: "running", Duration: formatDuration(s.StartedAt, s.FinishedAt)}
		if s.ExitCode != nil {
			v.Exit = strconv.Itoa(*s.ExitCode)
			v.ExitClass = "exit-fail"
			if *s.ExitCode == 0 {
				v.ExitClass = "exit-ok"
			}
		} else if s.FinishedAt != nil {
			v.Exit = "—"
		}
		if s.Error != "" {
			v.Exit += " (" + s.Error + ")"
		}
		p.Steps = append(p.Steps, v)
	}
	return panes, order
}

// lineClass is the CSS class of a log line: the event type, plus "stderr"
// for output read from standard error.
func lineClass(ev store.RunEvent) string {
	if ev.Type != string(schema.TypeShOutput) {
		return ev.Type
	}
	var out schema.ShOutput
	if json.Unmarshal([]byte(ev.Data), &out) == nil && out.Stream == schema.Stderr {
		return ev.Type + " stderr"
	}
	return ev.Type
}

// trustedHTML marks a log line rendered by [live.LineHTML], which escapes
// all output text, as safe to insert into the page.
func trustedHTML(s string) template.HTML {
	return template.HTML(s)
}

func parseRunID(s string) (uint, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, false
	}
	return uint(n), true
}
