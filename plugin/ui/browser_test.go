package ui

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/ui/uitest"
	"github.com/octavo-ci/octavo/schema"
)

// TestBrowserLiveLog opens a live run page in headless Chromium, feeds
// lines while it is open, cuts the websocket from the server side, and
// checks that every line shows exactly once, in order.
func TestBrowserLiveLog(t *testing.T) {
	ctx := newBrowser(t)
	tracker := &hijackTracker{}
	e := newTestEnv(t, "/ci/", true, tracker.wrap)

	repo := uitest.AddRepo(t, e.store, "alice/app", false)
	run := uitest.AddRun(t, e.store, repo, "main", store.RunActive, "", 0)
	if err := e.store.DB.Create(&store.Job{RunID: run.ID, Name: "test", Inputs: `["octavo/push"]`, State: "running"}).Error; err != nil {
		t.Fatal(err)
	}
	// More stored lines than the page renders, so the first ones must be
	// loaded on demand.
	uitest.AddEvents(t, e.store, run.ID, uitest.Lines("test", "stored line ", tailEvents+200)...)
	total := int64(tailEvents + 200)

	if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"runs/"+uitoa(run.ID))); err != nil {
		t.Fatalf("open run page: %v", err)
	}
	waitJS(t, ctx, `document.getElementById('live-status').textContent === 'Live'`)
	if got := evalJS[int](t, ctx, `document.querySelectorAll('.log .line').length`); got != tailEvents {
		t.Errorf("page shows %d lines before loading earlier ones, want the tail of %d", got, tailEvents)
	}

	feed := func(events ...store.RunEvent) {
		t.Helper()
		stored := uitest.AddEvents(t, e.store, run.ID, events...)
		e.hub.Publish(run.ID, stored)
		total = stored[len(stored)-1].Seq
	}
	waitSeq := func(seq int64) {
		t.Helper()
		waitJS(t, ctx, `document.querySelector('.line[data-seq="`+strconv.FormatInt(seq, 10)+`"]') !== null`)
	}

	feed(uitest.Event(schema.ShStarted{Envelope: schema.Envelope{Type: schema.TypeShStarted}, JobID: "test", Seq: 2, Cmd: "make <build>"}))
	feed(uitest.Lines("test", "live line ", 100)...)
	feed(uitest.Line("test", "same line"), uitest.Line("test", "same line"))
	feed(uitest.Line("test", "\x1b[1;31mred bold\x1b[0m and <b>not bold</b>"))
	feed(uitest.Line("test", strings.Repeat("long-line-without-spaces-", 400)))
	feed(uitest.Line("test", "downloading 10%\rdownloading 55%\rdownloaded 100%"))
	waitSeq(total)
	progressSeq := total
	feed(uitest.Event(schema.ShFinished{Envelope: schema.Envelope{Type: schema.TypeShFinished}, JobID: "test", Seq: 2, ExitCode: 3}))
	waitSeq(total)
	if got := evalJS[string](t, ctx, `document.querySelector('[data-step="2"] code').textContent + " " + document.querySelector('[data-step="2"] [data-exit]').textContent`); got != "make <build> 3" {
		t.Errorf("step row shows %q, want %q", got, "make <build> 3")
	}
	if !evalJS[bool](t, ctx, `(() => { const l = document.querySelector('.log[data-log="test"]'); return l.scrollWidth <= l.clientWidth; })()`) {
		t.Error("a long line makes the log scroll sideways, want it wrapped")
	}
	if got := evalJS[string](t, ctx, `document.querySelector('.line[data-seq="`+strconv.FormatInt(progressSeq, 10)+`"]').textContent`); got != "downloaded 100%" {
		t.Errorf("progress line shows %q, want its last state %q", got, "downloaded 100%")
	}

	if n := tracker.closeAll(); n != 1 {
		t.Fatalf("closed %d websockets, want the page's 1", n)
	}
	// Written while the page is disconnected: it must fetch these on
	// reconnecting.
	feed(uitest.Lines("test", "while away ", 50)...)
	waitJS(t, ctx, `document.getElementById('live-status').textContent === 'Live'`)
	feed(uitest.Lines("test", "after reconnect ", 50)...)
	waitSeq(total)

	if !evalJS[bool](t, ctx, `document.querySelector('.line span.fg1.b') !== null && document.querySelector('.log b') === null`) {
		t.Error("the coloured line is not a styled span, or output markup became an element")
	}
	same := evalJS[int](t, ctx, `Array.from(document.querySelectorAll('.line')).filter(e => e.textContent === 'same line').length`)
	if same != 2 {
		t.Errorf("identical consecutive lines shown %d times, want 2", same)
	}

	waitJS(t, ctx, `!document.querySelector('section.job[data-job="test"] button.earlier').hidden`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`section.job[data-job="test"] button.earlier`))); err != nil {
		t.Fatalf("click load earlier: %v", err)
	}
	waitSeq(1)

	seqs := evalJS[[]int64](t, ctx, seqListJS)
	checkSeqs(t, seqs, total)

	e.hub.RunChanged(uitest.SetRunState(t, e.store, run, store.RunComplete))
	waitJS(t, ctx, `document.getElementById('live-status').textContent === 'Run finished.'`)
	waitJS(t, ctx, `document.getElementById('run-state').textContent === 'complete'`)

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(artifactDir(t), "run-page-live.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatalf("write screenshot: %v", err)
	}
	t.Logf("screenshot: %s", path)
}

// checkSeqs fails unless seqs holds each of 1..total exactly once.
func checkSeqs(t testing.TB, seqs []int64, total int64) {
	t.Helper()
	sorted := append([]int64(nil), seqs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	for i, s := range sorted {
		if s != int64(i+1) {
			t.Fatalf("line seqs around position %d are %v, want each of 1..%d once", i, sorted[max(0, i-2):min(len(sorted), i+3)], total)
		}
	}
	if int64(len(sorted)) != total {
		t.Fatalf("page shows %d lines, want %d", len(sorted), total)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] < seqs[i-1] {
			t.Fatalf("line %d (seq %d) comes after seq %d, want document order by seq", i, seqs[i], seqs[i-1])
		}
	}
}
