package ui

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/ui/uitest"
	"github.com/octavo-ci/octavo/schema"
)

func TestIndexListsPublicReposOnly(t *testing.T) {
	e := newTestEnv(t, "/", false)
	pub := uitest.AddRepo(t, e.store, "alice/public", false)
	priv := uitest.AddRepo(t, e.store, "alice/secret", true)
	run := uitest.AddRun(t, e.store, pub, "main", store.RunComplete, "", time.Minute)
	uitest.AddRun(t, e.store, priv, "main", store.RunComplete, "", time.Minute)

	resp, body := e.get(t, "/")
	wantStatus(t, resp, body, http.StatusOK)
	wantContains(t, body, "alice/public", `href="/repos/alice/public"`, `href="/runs/`+strconv.Itoa(int(run.ID))+`"`, "passing")
	if strings.Contains(body, "secret") {
		t.Errorf("index lists the private repository:\n%s", body)
	}
}

func TestRepoPageListsRunsNewestFirst(t *testing.T) {
	e := newTestEnv(t, "/", false)
	repo := uitest.AddRepo(t, e.store, "alice/app", false)
	first := uitest.AddRun(t, e.store, repo, "main", store.RunComplete, "", 2*time.Minute)
	second := uitest.AddRun(t, e.store, repo, "feature/x", store.RunFailed, store.FailurePipeline, time.Minute)
	third := uitest.AddRun(t, e.store, repo, "main", store.RunFailed, store.FailureTimedOut, 3*time.Minute)

	resp, body := e.get(t, "/repos/alice/app")
	wantStatus(t, resp, body, http.StatusOK)
	i1 := strings.Index(body, ">#"+strconv.Itoa(int(first.ID))+"<")
	i2 := strings.Index(body, ">#"+strconv.Itoa(int(second.ID))+"<")
	i3 := strings.Index(body, ">#"+strconv.Itoa(int(third.ID))+"<")
	if i1 < 0 || i2 < 0 || i3 < 0 || !(i3 < i2 && i2 < i1) {
		t.Errorf("run positions = %d, %d, %d (oldest to newest), want all present and newest first", i1, i2, i3)
	}
	wantContains(t, body, "<svg", "trend-plot", "error: timed-out", `<option value="feature/x"`)

	t.Run("branch filter with a slash", func(t *testing.T) {
		resp, body := e.get(t, "/repos/alice/app?branch=feature%2Fx")
		wantStatus(t, resp, body, http.StatusOK)
		if !strings.Contains(body, ">#"+strconv.Itoa(int(second.ID))+"<") {
			t.Errorf("filtered page lacks run %d", second.ID)
		}
		if strings.Contains(body, ">#"+strconv.Itoa(int(first.ID))+"<") {
			t.Errorf("filtered page lists run %d of main", first.ID)
		}
	})
}

func TestRunPage(t *testing.T) {
	e := newTestEnv(t, "/", false)
	repo := uitest.AddRepo(t, e.store, "alice/app", false)
	run := uitest.AddRun(t, e.store, repo, "main", store.RunFailed, store.FailurePipeline, time.Minute)
	newer := uitest.AddRun(t, e.store, repo, "main", store.RunActive, "", 0)
	if err := e.store.DB.Model(&store.Run{}).Where("id = ?", run.ID).Update("replaced_by", newer.ID).Error; err != nil {
		t.Fatal(err)
	}
	exit0, exit2 := 0, 2
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	end := start.Add(1500 * time.Millisecond)
	rows := []any{
		&store.Job{RunID: run.ID, Name: "test", Position: 0, Inputs: `["octavo/push"]`, State: "succeeded"},
		&store.Job{RunID: run.ID, Name: "build", Position: 1, Inputs: `["test","octavo/push"]`, State: "failed", Error: "step 1 exited with 2"},
		&store.Step{RunID: run.ID, JobName: "test", Seq: 1, Cmd: "go test ./...", ExitCode: &exit0, StartedAt: &start, FinishedAt: &end},
		&store.Step{RunID: run.ID, JobName: "build", Seq: 1, Cmd: "make <all>", ExitCode: &exit2, StartedAt: &start, FinishedAt: &end},
	}
	for _, row := range rows {
		if err := e.store.DB.Create(row).Error; err != nil {
			t.Fatal(err)
		}
	}
	uitest.AddEvents(t, e.store, run.ID,
		uitest.Event(schema.RunStarted{Envelope: schema.Envelope{Type: schema.TypeRunStarted}, Schema: 1, Jobs: []schema.JobNode{{ID: "test"}, {ID: "build"}}}),
		uitest.Event(schema.ShStarted{Envelope: schema.Envelope{Type: schema.TypeShStarted}, JobID: "test", Seq: 1, Cmd: "go test ./..."}),
		uitest.Line("test", "\x1b[32mok\x1b[0m <script>alert(1)</script>"),
		uitest.Line("build", "bad \xff byte"),
	)

	resp, body := e.get(t, "/runs/"+strconv.Itoa(int(run.ID)))
	wantStatus(t, resp, body, http.StatusOK)
	wantContains(t, body,
		"failed",
		"refs/heads/main",
		`href="https://forge.example/alice/app/commit/0123456789abcdef0123456789abcdef01234567"`,
		"alice",
		"Fix the build",
		`href="/runs/`+strconv.Itoa(int(newer.ID))+`"`,
		"go test ./...",
		"make &lt;all&gt;",
		`class="exit-fail"`,
		"1.5s",
		"step 1 exited with 2",
		`class="job-graph"`,
		`<span class="fg2">ok</span> &lt;script&gt;alert(1)&lt;/script&gt;`,
		"bad \ufffd byte",
		`data-live-url="/api/v1/runs/`+strconv.Itoa(int(run.ID))+`/live"`,
		`data-final="true"`,
		`src="/static/live.js?v=`,
	)
	if strings.Contains(body, "<script>alert") {
		t.Error("run page contains unescaped output markup")
	}
	if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "script-src 'self'") {
		t.Errorf("Content-Security-Policy = %q, want script-src 'self'", got)
	}
}

func TestPrivateRepoIsNotFoundEverywhere(t *testing.T) {
	e := newTestEnv(t, "/", false)
	priv := uitest.AddRepo(t, e.store, "alice/secret", true)
	run := uitest.AddRun(t, e.store, priv, "main", store.RunComplete, "", time.Minute)
	uitest.AddEvents(t, e.store, run.ID, uitest.Line("test", "secret output"))
	id := strconv.Itoa(int(run.ID))

	for _, path := range []string{
		"/repos/alice/secret",
		"/runs/" + id,
		"/api/v1/runs/" + id,
		"/api/v1/runs/" + id + "/events",
		"/api/v1/runs/" + id + "/live",
		"/badge/alice/secret.svg",
		"/badge/alice/secret.json",
		"/cc.xml?repo=alice/secret",
	} {
		t.Run(path, func(t *testing.T) {
			resp, body := e.get(t, path)
			missing := strings.Replace(strings.Replace(path, "secret", "nothere", 1), "/runs/"+id, "/runs/999999", 1)
			resp2, body2 := e.get(t, missing)
			wantStatus(t, resp, body, http.StatusNotFound)
			if resp2.StatusCode != resp.StatusCode || body2 != body {
				t.Errorf("private %s answers %d %q, missing %s answers %d %q; want identical answers", path, resp.StatusCode, body, missing, resp2.StatusCode, body2)
			}
			if strings.Contains(body, "secret output") {
				t.Errorf("response leaks the run's output: %s", body)
			}
		})
	}
}

func TestPathPrefix(t *testing.T) {
	for _, tt := range []struct {
		name      string
		subrouter bool
	}{
		{"prefix stripped before the router", false},
		{"prefix handled by a subrouter", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, "/ci/", tt.subrouter)
			repo := uitest.AddRepo(t, e.store, "alice/app", false)
			run := uitest.AddRun(t, e.store, repo, "main", store.RunActive, "", 0)
			id := strconv.Itoa(int(run.ID))

			resp, body := e.get(t, "/")
			wantStatus(t, resp, body, http.StatusOK)
			wantContains(t, body, `href="/ci/repos/alice/app"`, `href="/ci/static/style.css?v=`, `href="/ci/runs/`+id+`"`)

			resp, body = e.get(t, "runs/"+id)
			wantStatus(t, resp, body, http.StatusOK)
			wantContains(t, body, `data-live-url="/ci/api/v1/runs/`+id+`/live"`, `data-events-url="/ci/api/v1/runs/`+id+`/events"`, `src="/ci/static/live.js?v=`)

			for _, asset := range []string{"static/style.css", "static/live.js"} {
				resp, body := e.get(t, asset)
				wantStatus(t, resp, body, http.StatusOK)
			}
			resp, body = e.get(t, "static/")
			wantStatus(t, resp, body, http.StatusNotFound)

			resp, body = e.get(t, "badge/alice/app.svg")
			wantStatus(t, resp, body, http.StatusOK)
		})
	}
}
