package ui

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/octavo-ci/octavo/plugin/store"
)

// Badge states. They are also the CSS classes of state labels.
const (
	statePassing = "passing"
	stateFailing = "failing"
	stateError   = "error"
	stateRunning = "running"
	stateUnknown = "unknown"
)

// badgeLabel is the left half of every badge.
const badgeLabel = "octavo"

// badgeStates are the run states a badge considers. A queued run may still
// end as skipped, and replaced, canceled and skipped runs show nothing about
// the branch's health.
var badgeStates = []store.RunState{store.RunActive, store.RunComplete, store.RunFailed}

func (u *UI) registerBadgeRoutes(r *mux.Router) {
	// NOTE: {repo} matches up to the last dot, so "my.repo.svg" is repo
	// "my.repo"; branch names travel in the query, slashes included.
	r.HandleFunc("/badge/{owner}/{repo}.svg", u.handleBadgeSVG).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/badge/{owner}/{repo}.json", u.handleBadgeJSON).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/cc.xml", u.handleCCTray).Methods(http.MethodGet, http.MethodHead)
}

// badgeState maps a run to a badge state; nil means no run.
func badgeState(run *store.Run) string {
	if run == nil {
		return stateUnknown
	}
	switch run.State {
	case store.RunQueued, store.RunActive:
		return stateRunning
	case store.RunComplete:
		return statePassing
	case store.RunFailed:
		if run.FailureKind == store.FailurePipeline || run.FailureKind == store.FailureNone {
			return stateFailing
		}
		return stateError
	default:
		return stateUnknown
	}
}

// latestRun returns the newest run of branch in one of states, or nil. An
// empty branch falls back to the repository's default branch, and to all
// branches when that is unknown too.
func (u *UI) latestRun(ctx context.Context, repo store.Repo, branch string, states []store.RunState) (*store.Run, error) {
	if branch == "" {
		branch = repo.DefaultBranch
	}
	runs, err := u.store.ListRepoRuns(ctx, store.RepoRunFilter{RepoID: repo.ID, Branch: branch, States: states, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, nil
	}
	return &runs[0], nil
}

// badgeRepoState reads the state a badge shows and the HTTP status to send
// it with. A public repository without a matching run is unknown with 200.
// A missing or private repository is unknown with 404, identical for both,
// so that no response reveals a private repository. The body is still a
// badge, which browsers show in an <img> whatever the status.
func (u *UI) badgeRepoState(r *http.Request) (string, int, error) {
	vars := mux.Vars(r)
	repo, found, err := u.store.PublicRepo(r.Context(), vars["owner"], vars["repo"])
	if err != nil {
		return "", 0, err
	}
	if !found {
		return stateUnknown, http.StatusNotFound, nil
	}
	run, err := u.latestRun(r.Context(), repo, r.URL.Query().Get("branch"), badgeStates)
	if err != nil {
		return "", 0, err
	}
	return badgeState(run), http.StatusOK, nil
}

type badgeData struct {
	Label, Message, Color           string
	Width, LabelWidth, MessageWidth int
	LabelX, MessageX                float64
}

func (u *UI) handleBadgeSVG(w http.ResponseWriter, r *http.Request) {
	state, status, err := u.badgeRepoState(r)
	if err != nil {
		u.serverError(w, r, err)
		return
	}

	d := badgeData{Label: badgeLabel, Message: state, Color: stateColor(state)}
	d.LabelWidth = textWidth(d.Label) + 10
	d.MessageWidth = textWidth(d.Message) + 10
	d.Width = d.LabelWidth + d.MessageWidth
	d.LabelX = float64(d.LabelWidth) / 2
	d.MessageX = float64(d.LabelWidth) + float64(d.MessageWidth)/2

	var buf bytes.Buffer
	if err := u.badge.Execute(&buf, d); err != nil {
		u.serverError(w, r, err)
		return
	}
	serveUncached(w, r, status, "image/svg+xml", buf.Bytes())
}

// shieldsJSON is the shields.io endpoint badge schema.
type shieldsJSON struct {
	SchemaVersion int    `json:"schemaVersion"`
	Label         string `json:"label"`
	Message       string `json:"message"`
	Color         string `json:"color"`
}

func (u *UI) handleBadgeJSON(w http.ResponseWriter, r *http.Request) {
	state, status, err := u.badgeRepoState(r)
	if err != nil {
		u.serverError(w, r, err)
		return
	}
	body, err := json.Marshal(shieldsJSON{SchemaVersion: 1, Label: badgeLabel, Message: state, Color: shieldsColor(state)})
	if err != nil {
		u.serverError(w, r, err)
		return
	}
	serveUncached(w, r, status, "application/json", body)
}

func shieldsColor(state string) string {
	switch state {
	case statePassing:
		return "brightgreen"
	case stateFailing:
		return "red"
	case stateError:
		return "orange"
	case stateRunning:
		return "blue"
	default:
		return "lightgrey"
	}
}

// serveUncached writes body with status, an ETag and Cache-Control:
// no-cache, so caches such as image proxies revalidate on every view and get
// a 304 while the state is unchanged. Only a 200 can become a 304.
func serveUncached(w http.ResponseWriter, r *http.Request, status int, contentType string, body []byte) {
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusOK && etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// etagMatches reports whether an If-None-Match header names etag, weakly
// compared as RFC 9110 requires for If-None-Match.
func etagMatches(header, etag string) bool {
	for _, candidate := range strings.Split(header, ",") {
		candidate = strings.TrimPrefix(strings.TrimSpace(candidate), "W/")
		if candidate == "*" || candidate == etag {
			return true
		}
	}
	return false
}

// textWidth estimates the width in pixels of s in 11px Verdana, the badge
// font, from rough per-character classes; badges only need to fit.
func textWidth(s string) int {
	w := 0.0
	for _, r := range s {
		switch {
		case strings.ContainsRune("ijlI.,:;|!'", r):
			w += 3.5
		case strings.ContainsRune("ftr -()[]", r):
			w += 4.8
		case strings.ContainsRune("mwMW", r):
			w += 10.5
		case r >= 'A' && r <= 'Z':
			w += 7.6
		default:
			w += 6.9
		}
	}
	return int(w + 0.5)
}

// ccProjects is the CCTray feed read by desktop build monitors.
type ccProjects struct {
	XMLName  xml.Name    `xml:"Projects"`
	Projects []ccProject `xml:"Project"`
}

type ccProject struct {
	Name            string `xml:"name,attr"`
	Activity        string `xml:"activity,attr"`
	LastBuildStatus string `xml:"lastBuildStatus,attr"`
	LastBuildLabel  string `xml:"lastBuildLabel,attr,omitempty"`
	LastBuildTime   string `xml:"lastBuildTime,attr,omitempty"`
	WebURL          string `xml:"webUrl,attr"`
}

// handleCCTray serves /cc.xml: one project per public repository, or only
// ?repo=OWNER/REPO, reporting its default branch.
func (u *UI) handleCCTray(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var repos []store.Repo
	if full := r.URL.Query().Get("repo"); full != "" {
		owner, name, ok := strings.Cut(full, "/")
		if !ok {
			http.Error(w, "invalid repo="+strconv.Quote(full)+": want OWNER/REPO", http.StatusBadRequest)
			return
		}
		repo, found, err := u.store.PublicRepo(ctx, owner, name)
		if err != nil {
			u.serverError(w, r, err)
			return
		}
		if !found {
			u.notFound(w)
			return
		}
		repos = []store.Repo{repo}
	} else {
		var err error
		if repos, err = u.store.ListPublicRepos(ctx); err != nil {
			u.serverError(w, r, err)
			return
		}
	}

	out := ccProjects{Projects: make([]ccProject, 0, len(repos))}
	for _, repo := range repos {
		p, err := u.ccProject(ctx, repo)
		if err != nil {
			u.serverError(w, r, err)
			return
		}
		out.Projects = append(out.Projects, p)
	}
	body, err := xml.MarshalIndent(out, "", "  ")
	if err != nil {
		u.serverError(w, r, err)
		return
	}
	serveUncached(w, r, http.StatusOK, "application/xml; charset=utf-8", append([]byte(xml.Header), body...))
}

func (u *UI) ccProject(ctx context.Context, repo store.Repo) (ccProject, error) {
	p := ccProject{Name: repo.FullName, Activity: "Sleeping", LastBuildStatus: "Unknown", WebURL: u.absolute(u.repoURL(repo))}

	newest, err := u.latestRun(ctx, repo, "", []store.RunState{store.RunActive})
	if err != nil {
		return p, err
	}
	if newest != nil {
		p.Activity = "Building"
	}
	done, err := u.latestRun(ctx, repo, "", []store.RunState{store.RunComplete, store.RunFailed})
	if err != nil {
		return p, err
	}
	if done == nil {
		return p, nil
	}
	switch badgeState(done) {
	case statePassing:
		p.LastBuildStatus = "Success"
	case stateFailing:
		p.LastBuildStatus = "Failure"
	default:
		p.LastBuildStatus = "Exception"
	}
	p.LastBuildLabel = strconv.FormatUint(uint64(done.ID), 10)
	when := done.CreatedAt
	if done.FinishedAt != nil {
		when = *done.FinishedAt
	}
	p.LastBuildTime = when.UTC().Format(time.RFC3339)
	p.WebURL = u.absolute(u.link("runs/" + p.LastBuildLabel))
	return p, nil
}
