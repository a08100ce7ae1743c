package ui

import (
	"fmt"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/octavo-ci/octavo/plugin/store"
)

// common is the part of every page's data the layout uses.
type common struct {
	Base    string
	Version string
}

// runView is a run as the pages show it.
type runView struct {
	ID            uint
	URL           string
	State         store.RunState
	StateText     string
	StateClass    string
	Ref           string
	RefName       string
	SHA           string
	ShortSHA      string
	CommitURL     string
	Title         string
	Pusher        string
	Error         string
	Created       string
	Started       string
	Finished      string
	Duration      string
	ReplacedByID  uint
	ReplacedByURL string
}

// toRunView converts a run for the pages; repo may be the zero value when
// the caller does not link commits.
func (u *UI) toRunView(run store.Run, repo store.Repo) runView {
	v := runView{
		ID:         run.ID,
		URL:        u.link("runs/" + strconv.FormatUint(uint64(run.ID), 10)),
		State:      run.State,
		StateText:  stateText(run),
		StateClass: stateClass(run),
		Ref:        run.Ref,
		RefName:    refName(run),
		SHA:        run.SHA,
		ShortSHA:   shortSHA(run.SHA),
		CommitURL:  u.commitURL(repo, run.SHA),
		Title:      firstLine(run.Message),
		Pusher:     run.Pusher,
		Error:      run.Error,
		Created:    formatTime(&run.CreatedAt),
		Started:    formatTime(run.StartedAt),
		Finished:   formatTime(run.FinishedAt),
		Duration:   formatDuration(run.StartedAt, run.FinishedAt),
	}
	if run.ReplacedBy != nil {
		v.ReplacedByID = *run.ReplacedBy
		v.ReplacedByURL = u.link("runs/" + strconv.FormatUint(uint64(*run.ReplacedBy), 10))
	}
	return v
}

// stateText is the word shown for a run's state; a failed run shows why.
func stateText(run store.Run) string {
	switch run.State {
	case store.RunFailed:
		switch run.FailureKind {
		case store.FailurePipeline, store.FailureNone:
			return "failed"
		default:
			return "error: " + string(run.FailureKind)
		}
	case store.RunActive:
		return "running"
	default:
		return string(run.State)
	}
}

// stateClass maps a run to the CSS class of its state label, which is also
// the badge state.
func stateClass(run store.Run) string {
	return badgeState(&run)
}

func refName(run store.Run) string {
	switch {
	case run.Branch != "":
		return run.Branch
	case run.Tag != "":
		return "tag " + run.Tag
	default:
		return run.Ref
	}
}

// commitURL links sha on the forge: below the repository's own HTML URL,
// or below ForgeURL. It returns "" when neither is known.
func (u *UI) commitURL(repo store.Repo, sha string) string {
	if sha == "" {
		return ""
	}
	if repo.HTMLURL != "" {
		if base, err := url.Parse(repo.HTMLURL); err == nil && (base.Scheme == "https" || base.Scheme == "http") {
			return strings.TrimSuffix(base.String(), "/") + "/commit/" + url.PathEscape(sha)
		}
	}
	if u.forgeURL != nil && repo.FullName != "" {
		return strings.TrimSuffix(u.forgeURL.String(), "/") + "/" + escapeFullName(repo.FullName) + "/commit/" + url.PathEscape(sha)
	}
	return ""
}

func escapeFullName(fullName string) string {
	owner, name, _ := strings.Cut(fullName, "/")
	return url.PathEscape(owner) + "/" + url.PathEscape(name)
}

func shortSHA(sha string) string {
	if len(sha) > 10 {
		return sha[:10]
	}
	return sha
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

func formatTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func formatDuration(start, end *time.Time) string {
	if start == nil || end == nil {
		return ""
	}
	return roundDuration(end.Sub(*start)).String()
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}

// trendSVG draws the durations of runs (newest first, as listed) as bars,
// oldest on the left, coloured by result. Every value written into the SVG
// is a number, a fixed colour, or text passed through template escaping.
func (u *UI) trendSVG(runs []store.Run) (template.HTML, int) {
	type bar struct {
		id       uint
		seconds  float64
		class    string
		duration time.Duration
	}
	var bars []bar
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		if r.StartedAt == nil || r.FinishedAt == nil {
			continue
		}
		d := r.FinishedAt.Sub(*r.StartedAt)
		bars = append(bars, bar{id: r.ID, seconds: d.Seconds(), class: badgeState(&r), duration: d})
	}
	if len(bars) == 0 {
		return "", 0
	}

	maxSeconds := 0.0
	for _, b := range bars {
		maxSeconds = max(maxSeconds, b.seconds)
	}
	if maxSeconds <= 0 {
		maxSeconds = 1
	}

	const (
		height = 80.0
		barW   = 14.0
		gap    = 4.0
		axis   = 16.0
	)
	width := float64(len(bars))*(barW+gap) + gap
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="trend-plot" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="run durations">`,
		width, height+axis, width, height+axis)
	for i, bar := range bars {
		h := max(bar.seconds/maxSeconds*height, 1)
		x := gap + float64(i)*(barW+gap)
		fmt.Fprintf(&b, `<a href="%s"><rect x="%.1f" y="%.1f" width="%.0f" height="%.1f" fill="%s"><title>run #%d: %s</title></rect></a>`,
			template.HTMLEscapeString(u.link("runs/"+strconv.FormatUint(uint64(bar.id), 10))),
			x, height-h, barW, h, stateColor(bar.class), bar.id, template.HTMLEscapeString(roundDuration(bar.duration).String()))
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="11" fill="#656d76">max %s</text>`, gap, height+axis-3,
		template.HTMLEscapeString(roundDuration(time.Duration(maxSeconds*float64(time.Second))).String()))
	b.WriteString(`</svg>`)
	// The builder wrote only numbers, fixed strings and escaped text.
	return template.HTML(b.String()), len(bars)
}

// stateColor is the fill of a state on plots and badges.
func stateColor(state string) string {
	switch state {
	case statePassing:
		return "#2da44e"
	case stateFailing:
		return "#cf222e"
	case stateError:
		return "#e16f24"
	case stateRunning:
		return "#0969da"
	default:
		return "#9f9f9f"
	}
}
