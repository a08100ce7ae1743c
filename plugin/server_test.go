package plugin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/octavo-ci/octavo/plugin/store"
)

const helloPipeline = `def test(ctx):
    push = ctx.input("octavo/push")
    ctx.sh("echo hello " + push.ref)
    ctx.sh("echo token=" + ctx.secret("DEPLOY_TOKEN"))

job("test", inputs = ["octavo/push"], run = test)
`

const tagPipeline = `def test(ctx):
    ctx.sh("echo tag " + ctx.input("octavo/push").tag)

job("test", inputs = ["octavo/push"], run = test)
`

// tagPipelineFree runs on any ref without secrets.
const tagPipelineFree = `def test(ctx):
    ctx.sh("echo " + ctx.input("octavo/push").ref)

job("test", inputs = ["octavo/push"], run = test)
`

const failingPipeline = `def test(ctx):
    ctx.sh("echo about to fail; exit 4")

job("test", inputs = ["octavo/push"], run = test)
`

// pushHook commits files to repo, publishes it and delivers the push
// through h; it returns the run id the server queued.
func pushHook(t *testing.T, h http.Handler, path string, repo *forgeRepo, ref, message string, files map[string]string) uint {
	t.Helper()
	sha, before := repo.commitAndPush(t, message, files)
	body := pushBody(t, repo.name, repo.cloneURL, ref, before, sha, message)
	code, out := serveHTTP(h, signedRequest(t, path, "push", body, hookSecret))
	if code != http.StatusAccepted {
		t.Fatalf("push delivery = %d %s, want 202", code, out)
	}
	return decodeReply(t, out).RunID
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, v); err != nil {
			t.Fatalf("decode %s: %v: %s", url, err, raw)
		}
	}
	return resp.StatusCode
}

func TestPushRunsPipelineWithRealRunner(t *testing.T) {
	secrets := t.TempDir() + "/secrets.json"
	writeFile(t, secrets, `{"acme/*":{"DEPLOY_TOKEN":"owner-wide-value"},"acme/app":{"DEPLOY_TOKEN":"repo-only-value"}}`)
	s, _ := newTestServer(t, map[string]string{"OCTAVO_SECRETS_FILE": secrets})
	start(t, s)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	repo := newForgeRepo(t, "acme/app")

	id := pushHook(t, s.Handler(), "/hooks", repo, "refs/heads/main", "add pipeline", map[string]string{".octavo/ci.star": helloPipeline})
	r := waitRun(t, s, id)
	if r.State != store.RunComplete {
		t.Fatalf("run = %s / %s (%s), want complete", r.State, r.FailureKind, r.Error)
	}

	var run apiRun
	if code := getJSON(t, fmt.Sprintf("%s/api/v1/runs/%d", srv.URL, id), &run); code != http.StatusOK {
		t.Fatalf("GET run = %d, want 200", code)
	}
	if run.State != "complete" || run.SHA != r.SHA {
		t.Errorf("API run = %+v, want complete with sha %s", run, r.SHA)
	}
	if r.Attempt != 1 || r.StartedAt == nil || r.FinishedAt == nil {
		t.Errorf("run attempt %d, started %v, finished %v, want 1 and both times", r.Attempt, r.StartedAt, r.FinishedAt)
	}

	var log struct {
		Events []struct {
			Seq   int64           `json:"seq"`
			Event json.RawMessage `json:"event"`
		} `json:"events"`
	}
	getJSON(t, fmt.Sprintf("%s/api/v1/runs/%d/log?after=0", srv.URL, id), &log)
	var all strings.Builder
	for i, e := range log.Events {
		if e.Seq != int64(i+1) {
			t.Errorf("event %d has seq %d, want %d", i, e.Seq, i+1)
		}
		all.Write(e.Event)
	}
	if !strings.Contains(all.String(), "hello refs/heads/main") {
		t.Errorf("log %s has no hello refs/heads/main line", all.String())
	}
	if strings.Contains(all.String(), "repo-only-value") {
		t.Errorf("log shows the secret unmasked: %s", all.String())
	}
	if strings.Contains(all.String(), "owner-wide-value") {
		t.Errorf("run received the owner-wide secret instead of the repository's: %s", all.String())
	}

	var list struct {
		Runs []apiRun `json:"runs"`
	}
	getJSON(t, srv.URL+"/api/v1/runs?repo=acme/app&ref=main", &list)
	if len(list.Runs) != 1 || list.Runs[0].ID != id {
		t.Errorf("run list = %+v, want run %d", list.Runs, id)
	}

	// The list and the single run share one shape: every field of the
	// single run but its jobs, with the same values.
	var listed struct {
		Runs []map[string]any `json:"runs"`
	}
	getJSON(t, fmt.Sprintf("%s/api/v1/runs?repo=acme/app&limit=1", srv.URL), &listed)
	var single map[string]any
	getJSON(t, fmt.Sprintf("%s/api/v1/runs/%d", srv.URL, id), &single)
	if len(listed.Runs) != 1 {
		t.Fatalf("run list has %d runs, want 1", len(listed.Runs))
	}
	delete(single, "jobs")
	if diff := cmp.Diff(single, listed.Runs[0]); diff != "" {
		t.Errorf("listed run differs from the single run (-single +listed):\n%s", diff)
	}
}

func TestPushOutcomes(t *testing.T) {
	s, _ := newTestServer(t, nil)
	start(t, s)
	h := s.Handler()
	repo := newForgeRepo(t, "acme/app")

	failed := pushHook(t, h, "/hooks", repo, "refs/heads/main", "failing", map[string]string{".octavo/ci.star": failingPipeline})
	if r := waitRun(t, s, failed); r.State != store.RunFailed || r.FailureKind != store.FailurePipeline {
		t.Errorf("failing pipeline run = %s / %q, want failed / pipeline-failure", r.State, r.FailureKind)
	}

	skipped := pushHook(t, h, "/hooks", repo, "refs/heads/main", "drop pipeline", map[string]string{".octavo/ci.star": ""})
	if r := waitRun(t, s, skipped); r.State != store.RunSkipped {
		t.Errorf("run without pipeline = %s, want skipped", r.State)
	}
	var statuses int64
	s.st.DB.Model(&store.CommitStatus{}).Count(&statuses)
	if statuses != 0 {
		t.Errorf("%d commit statuses without a forge URL, want 0", statuses)
	}

	repo.commitAndPush(t, "pipeline back", map[string]string{".octavo/ci.star": tagPipeline})
	gittestTag(t, repo, "v1.0.0")
	sha, _ := gitOutput(repo.Dir, "rev-parse", "HEAD")
	body := pushBody(t, repo.name, repo.cloneURL, "refs/tags/v1.0.0", strings.Repeat("0", 40), sha, "pipeline back")
	code, out := serveHTTP(h, signedRequest(t, "/hooks", "push", body, hookSecret))
	if code != http.StatusAccepted {
		t.Fatalf("tag push = %d %s, want 202", code, out)
	}
	r := waitRun(t, s, decodeReply(t, out).RunID)
	if r.State != store.RunComplete || r.Tag != "v1.0.0" || r.Branch != "" {
		t.Errorf("tag run = %s tag %q branch %q, want complete, tag v1.0.0, no branch", r.State, r.Tag, r.Branch)
	}
	if !strings.Contains(r.Payload, `"tag":"v1.0.0"`) {
		t.Errorf("tag run payload = %s, want tag set", r.Payload)
	}
}

// TestPrefixMount mounts the handler under /ci/ inside another ServeMux,
// as a program embedding octavo does, with and without StripPrefix.
func TestPrefixMount(t *testing.T) {
	s, _ := newTestServer(t, map[string]string{"OCTAVO_PUBLIC_URL": "http://127.0.0.1:9/ci/"})
	start(t, s)
	repo := newForgeRepo(t, "acme/app")

	mux := http.NewServeMux()
	mux.Handle("/ci/", s.Handler())
	mux.Handle("/stripped/", http.StripPrefix("/stripped", s.Handler()))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "host app") })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	id := pushHook(t, mux, "/ci/hooks", repo, "refs/heads/main", "add pipeline", map[string]string{".octavo/ci.star": helloPipeline})
	waitRun(t, s, id)

	for _, base := range []string{"/ci", "/stripped"} {
		for _, path := range []string{"/healthz", fmt.Sprintf("/api/v1/runs/%d", id), fmt.Sprintf("/runs/%d", id), "/", "/repos/acme/app", "/badge/acme/app.svg", fmt.Sprintf("/api/v1/runs/%d/events?after=0", id)} {
			resp, err := http.Get(srv.URL + base + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s%s = %d, want 200", base, path, resp.StatusCode)
			}
		}
	}

	var run apiRun
	getJSON(t, fmt.Sprintf("%s/ci/api/v1/runs/%d", srv.URL, id), &run)
	if want := fmt.Sprintf("http://127.0.0.1:9/ci/runs/%d", id); s.RunURL(id) != want {
		t.Errorf("RunURL = %s, want %s", s.RunURL(id), want)
	}
	resp, err := http.Get(srv.URL + "/elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != "host app" {
		t.Errorf("host route answered %q, want host app", got)
	}
}
