package ui

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/ui/uitest"
)

func TestBadgeStates(t *testing.T) {
	tests := []struct {
		name  string
		runs  []store.Run // State and FailureKind of runs oldest first
		want  string
		color string
	}{
		{"no run is unknown", nil, "unknown", "lightgrey"},
		{"complete run is passing", []store.Run{{State: store.RunComplete}}, "passing", "brightgreen"},
		{"pipeline failure is failing", []store.Run{{State: store.RunFailed, FailureKind: store.FailurePipeline}}, "failing", "red"},
		{"crashed runner is error", []store.Run{{State: store.RunFailed, FailureKind: store.FailureProcessCrashed}}, "error", "orange"},
		{"active run is running", []store.Run{{State: store.RunComplete}, {State: store.RunActive}}, "running", "blue"},
		{"replaced and skipped runs are ignored", []store.Run{{State: store.RunComplete}, {State: store.RunReplaced}, {State: store.RunSkipped}}, "passing", "brightgreen"},
		{"queued run is ignored", []store.Run{{State: store.RunFailed, FailureKind: store.FailurePipeline}, {State: store.RunQueued}}, "failing", "red"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, "/", false)
			repo := uitest.AddRepo(t, e.store, "alice/app", false)
			for _, r := range tt.runs {
				uitest.AddRun(t, e.store, repo, "main", r.State, r.FailureKind, time.Minute)
			}

			resp, body := e.get(t, "/badge/alice/app.svg")
			wantStatus(t, resp, body, http.StatusOK)
			if got := resp.Header.Get("Content-Type"); got != "image/svg+xml" {
				t.Errorf("Content-Type = %q, want image/svg+xml", got)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control = %q, want no-cache", got)
			}
			wantContains(t, body, "<svg", ">"+tt.want+"</text>")

			resp, body = e.get(t, "/badge/alice/app.json")
			wantStatus(t, resp, body, http.StatusOK)
			var got shieldsJSON
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
			want := shieldsJSON{SchemaVersion: 1, Label: "octavo", Message: tt.want, Color: tt.color}
			if got != want {
				t.Errorf("JSON badge = %+v, want %+v", got, want)
			}
		})
	}
}

func TestBadgeBranchWithSlash(t *testing.T) {
	e := newTestEnv(t, "/", false)
	repo := uitest.AddRepo(t, e.store, "alice/app", false)
	uitest.AddRun(t, e.store, repo, "main", store.RunComplete, "", time.Minute)
	uitest.AddRun(t, e.store, repo, "release/v1.2", store.RunFailed, store.FailurePipeline, time.Minute)

	_, body := e.get(t, "/badge/alice/app.svg?branch=release/v1.2")
	wantContains(t, body, ">failing</text>")
	_, body = e.get(t, "/badge/alice/app.svg?branch=release%2Fv1.2")
	wantContains(t, body, ">failing</text>")
	_, body = e.get(t, "/badge/alice/app.svg")
	wantContains(t, body, ">passing</text>")
	_, body = e.get(t, "/badge/alice/app.svg?branch=nothing/here")
	wantContains(t, body, ">unknown</text>")
}

func TestBadgeETag(t *testing.T) {
	e := newTestEnv(t, "/", false)
	repo := uitest.AddRepo(t, e.store, "alice/app", false)
	run := uitest.AddRun(t, e.store, repo, "main", store.RunActive, "", 0)

	resp, body := e.get(t, "/badge/alice/app.svg")
	wantStatus(t, resp, body, http.StatusOK)
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("badge has no ETag")
	}

	resp, body = e.get(t, "/badge/alice/app.svg", "If-None-Match", etag)
	wantStatus(t, resp, body, http.StatusNotModified)
	if body != "" {
		t.Errorf("304 body = %q, want empty", body)
	}

	uitest.SetRunState(t, e.store, run, store.RunComplete)
	resp, body = e.get(t, "/badge/alice/app.svg", "If-None-Match", etag)
	wantStatus(t, resp, body, http.StatusOK)
	wantContains(t, body, ">passing</text>")
	if got := resp.Header.Get("ETag"); got == etag {
		t.Errorf("ETag stayed %s after the state changed", got)
	}
}

func TestBadgeOfUnknownRepoIsNotFoundBadge(t *testing.T) {
	e := newTestEnv(t, "/", false)
	resp, body := e.get(t, "/badge/nobody/nothing.svg")
	wantStatus(t, resp, body, http.StatusNotFound)
	wantContains(t, body, "<svg", ">unknown</text>")
}

func TestCCTray(t *testing.T) {
	e := newTestEnv(t, "/ci/", false)
	repo := uitest.AddRepo(t, e.store, "alice/app", false)
	done := uitest.AddRun(t, e.store, repo, "main", store.RunFailed, store.FailurePipeline, time.Minute)
	uitest.AddRun(t, e.store, repo, "main", store.RunActive, "", 0)
	uitest.AddRepo(t, e.store, "alice/empty", false)

	resp, body := e.get(t, "cc.xml?repo=alice/app")
	wantStatus(t, resp, body, http.StatusOK)
	var got ccProjects
	if err := xml.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if len(got.Projects) != 1 {
		t.Fatalf("projects = %d, want 1", len(got.Projects))
	}
	p := got.Projects[0]
	if p.Name != "alice/app" || p.Activity != "Building" || p.LastBuildStatus != "Failure" || p.LastBuildLabel != uitoa(done.ID) {
		t.Errorf("project = %+v, want alice/app Building Failure label %d", p, done.ID)
	}
	if !strings.HasSuffix(p.WebURL, "/ci/runs/"+uitoa(done.ID)) || !strings.HasPrefix(p.WebURL, "http://127.0.0.1:") {
		t.Errorf("webUrl = %q, want an absolute URL of run %d below /ci/", p.WebURL, done.ID)
	}

	_, body = e.get(t, "cc.xml")
	wantContains(t, body, `name="alice/app"`, `name="alice/empty"`, `lastBuildStatus="Unknown"`)

	resp, body = e.get(t, "cc.xml?repo=nonsense")
	wantStatus(t, resp, body, http.StatusBadRequest)
}
