package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/internal/giteatest"
)

// Poll bounds. A run of the small pipelines here takes a few seconds; the
// bounds leave room for a loaded CI machine running tests in parallel.
const (
	pollInterval = 200 * time.Millisecond
	runTimeout   = 3 * time.Minute
)

// statusContext is the commit-status context octavo posts under.
const statusContext = "octavo"

// env is one test's world: a repository of its own on the shared Gitea, a
// working copy of it, and an octavo serve registered for it.
type env struct {
	t       *testing.T
	gitea   *giteatest.Instance
	repo    giteatest.Repo
	clone   *giteatest.Clone
	sidecar *giteatest.Sidecar
	cfg     giteatest.SidecarConfig
	http    *http.Client
}

// newEnv creates a repository named after prefix, clones it, starts octavo
// on a free port with its own data dir (extra settings in settings) and
// registers the repository's webhook with `octavo register`.
func newEnv(t *testing.T, prefix string, settings ...string) *env {
	t.Helper()
	e := newEnvWithoutRegister(t, prefix, "", settings...)
	out, err := e.sidecar.Register(t.Context(), e.repo.FullName)
	if err != nil {
		t.Fatalf("%v\noctavo log:\n%s", err, e.sidecar.LogTail(3000))
	}
	t.Logf("octavo register %s:\n%s", e.repo.FullName, out)
	return e
}

// newEnvWithoutRegister is [newEnv] without the webhook. Octavo checks
// deliveries against secret, or a random secret when it is empty.
func newEnvWithoutRegister(t *testing.T, prefix, secret string, settings ...string) *env {
	t.Helper()
	octavo, runner := binaries(t)
	gitea := giteatest.Shared(t)
	ctx := t.Context()

	repo, err := gitea.CreateRepo(ctx, prefix+"-"+randomHex(4))
	if err != nil {
		t.Fatal(err)
	}
	clone, err := gitea.Clone(ctx, repo.FullName, filepath.Join(t.TempDir(), "work"))
	if err != nil {
		t.Fatal(err)
	}

	if secret == "" {
		secret = "e2e-" + randomHex(12)
	}
	e := &env{
		t:     t,
		gitea: gitea,
		repo:  repo,
		clone: clone,
		http:  &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{Proxy: nil}},
	}
	e.cfg = giteatest.SidecarConfig{
		Octavo: octavo,
		Runner: runner,
		Gitea:  gitea,
		Dir:    t.TempDir(),
		Secret: secret,
		Env:    append([]string{"OCTAVO_CATCH_UP=false"}, settings...),
	}
	e.start()
	return e
}

// start starts octavo serve with e.cfg on a free port and stops it when the
// test ends. A restart reuses the port of the first start, so that the
// registered webhook URL stays valid.
func (e *env) start() {
	e.t.Helper()
	fixed := e.cfg.Listen != ""
	var sidecar *giteatest.Sidecar
	// Another process can take a free port before octavo binds it, so a
	// fresh port is tried up to three times.
	for attempt := 1; ; attempt++ {
		if !fixed {
			port, err := giteatest.FreePort()
			if err != nil {
				e.t.Fatal(err)
			}
			e.cfg.Listen = "127.0.0.1:" + strconv.Itoa(port)
		}
		var err error
		sidecar, err = giteatest.StartSidecar(e.t.Context(), e.cfg)
		if err == nil {
			break
		}
		if fixed || attempt == 3 {
			e.t.Fatal(err)
		}
	}
	e.sidecar = sidecar
	e.t.Cleanup(func() {
		if err := sidecar.Stop(); err != nil {
			e.t.Errorf("stop octavo: %v", err)
		}
		if e.t.Failed() {
			e.t.Logf("octavo log:\n%s", sidecar.LogTail(6000))
		}
	})
}

// push writes files, commits and pushes the current branch, and returns
// the new sha.
func (e *env) push(files map[string]string, message string) string {
	e.t.Helper()
	sha, err := e.clone.CommitAndPush(e.t.Context(), files, message)
	if err != nil {
		e.t.Fatal(err)
	}
	return sha
}

// git runs a git command in the working copy.
func (e *env) git(args ...string) string {
	e.t.Helper()
	out, err := e.clone.Git(e.t.Context(), args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// finalStates are the commit-status states a finished run ends with.
var finalStates = map[string]bool{"success": true, "failure": true, "error": true, "warning": true}

// waitStatus polls Gitea until sha carries a final status of context
// octavo, and returns it.
func (e *env) waitStatus(sha string) giteatest.Status {
	e.t.Helper()
	var last giteatest.CombinedStatus
	var lastErr error
	deadline := time.Now().Add(runTimeout)
	for time.Now().Before(deadline) {
		last, lastErr = e.gitea.CombinedStatus(e.t.Context(), e.repo.FullName, sha)
		if lastErr == nil {
			if st, ok := last.Context(statusContext); ok && finalStates[st.State] {
				return st
			}
		}
		e.sleep()
	}
	e.t.Fatalf("no final %q status on %s within %s: last combined status %+v, err %v", statusContext, sha, runTimeout, last, lastErr)
	return giteatest.Status{}
}

func (e *env) sleep() {
	select {
	case <-e.t.Context().Done():
	case <-time.After(pollInterval):
	}
}

// apiRun is a run as octavo's read API returns it.
type apiRun struct {
	ID          uint   `json:"id"`
	Repo        string `json:"repo"`
	Ref         string `json:"ref"`
	SHA         string `json:"sha"`
	Event       string `json:"event"`
	State       string `json:"state"`
	FailureKind string `json:"failure_kind"`
	Error       string `json:"error"`
	ReplacedBy  *uint  `json:"replaced_by"`
	Attempts    int    `json:"attempts"`
	Tag         string `json:"tag"`
	Branch      string `json:"branch"`
	Jobs        []struct {
		Name  string `json:"name"`
		State string `json:"state"`
	} `json:"jobs"`
}

func (r apiRun) final() bool { return r.State != "queued" && r.State != "active" }

// getJSON GETs path from octavo and decodes the 200 response into out.
func (e *env) getJSON(path string, out any) error {
	body, status, err := e.get(path)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %.300s", path, status, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode GET %s: %w: %.300s", path, err, body)
	}
	return nil
}

// get GETs path (below the sidecar's URL) or a full URL.
func (e *env) get(path string) ([]byte, int, error) {
	target := path
	if !strings.HasPrefix(path, "http") {
		target = e.sidecar.URL + path
	}
	req, err := http.NewRequestWithContext(e.t.Context(), http.MethodGet, target, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return body, resp.StatusCode, err
}

// runs lists the runs of the test's repository (all refs when ref is
// empty), newest first.
func (e *env) runs(repo, ref string) []apiRun {
	e.t.Helper()
	q := url.Values{"repo": {repo}}
	if ref != "" {
		q.Set("ref", ref)
	}
	var raw json.RawMessage
	if err := e.getJSON("/api/v1/runs?"+q.Encode(), &raw); err != nil {
		e.t.Fatal(err)
	}
	runs, err := decodeRunList(raw)
	if err != nil {
		e.t.Fatal(err)
	}
	return runs
}

// decodeRunList accepts a bare array of runs or an object that carries
// them under "runs" or "items" next to paging fields.
func decodeRunList(raw json.RawMessage) ([]apiRun, error) {
	raw = bytes.TrimSpace(raw)
	var runs []apiRun
	if len(raw) > 0 && raw[0] == '[' {
		err := json.Unmarshal(raw, &runs)
		return runs, err
	}
	var page struct {
		Runs  []apiRun `json:"runs"`
		Items []apiRun `json:"items"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return nil, fmt.Errorf("decode the run list: %w: %.300s", err, raw)
	}
	if page.Runs != nil {
		return page.Runs, nil
	}
	return page.Items, nil
}

// run returns one run by id.
func (e *env) run(id uint) apiRun {
	e.t.Helper()
	var raw json.RawMessage
	if err := e.getJSON(fmt.Sprintf("/api/v1/runs/%d", id), &raw); err != nil {
		e.t.Fatal(err)
	}
	r, err := decodeRun(raw)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// decodeRun accepts the run object itself or one wrapped under "run".
func decodeRun(raw json.RawMessage) (apiRun, error) {
	var wrapped struct {
		Run *apiRun `json:"run"`
	}
	if err := json.Unmarshal(raw, &wrapped); err == nil && wrapped.Run != nil {
		return *wrapped.Run, nil
	}
	var r apiRun
	err := json.Unmarshal(raw, &r)
	return r, err
}

// waitRun polls the run list of ref until a run for sha satisfies ok, and
// returns it.
func (e *env) waitRun(ref, sha, what string, ok func(apiRun) bool) apiRun {
	e.t.Helper()
	var last []apiRun
	deadline := time.Now().Add(runTimeout)
	for time.Now().Before(deadline) {
		last = e.runs(e.repo.FullName, ref)
		for _, r := range last {
			if r.SHA == sha && ok(r) {
				return r
			}
		}
		e.sleep()
	}
	e.t.Fatalf("no run of %s at %s %s within %s; runs of the ref: %+v", ref, sha, what, runTimeout, last)
	return apiRun{}
}

// hook returns the webhook octavo registered on the test's repository.
func (e *env) hook() giteatest.Hook {
	e.t.Helper()
	hooks, err := e.gitea.Hooks(e.t.Context(), e.repo.FullName)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, h := range hooks {
		if strings.HasPrefix(h.Config["url"], e.sidecar.URL+"/") {
			return h
		}
	}
	e.t.Fatalf("no webhook to %s among %+v", e.sidecar.URL, hooks)
	return giteatest.Hook{}
}

// waitDelivery polls the delivery history of hookID until a delivery that
// Gitea attempted satisfies ok, and returns it.
func (e *env) waitDelivery(hookID int64, what string, ok func(giteatest.Delivery) bool) giteatest.Delivery {
	e.t.Helper()
	var last []giteatest.Delivery
	deadline := time.Now().Add(runTimeout)
	for time.Now().Before(deadline) {
		var err error
		last, err = e.gitea.Deliveries(e.t.Context(), hookID)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, d := range last {
			if d.Delivered && ok(d) {
				return d
			}
		}
		e.sleep()
	}
	e.t.Fatalf("no delivery %s of webhook %d within %s; history: %+v", what, hookID, runTimeout, summarize(last))
	return giteatest.Delivery{}
}

func summarize(ds []giteatest.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s %s delivered=%t succeeded=%t status=%d", d.UUID, d.Event, d.Delivered, d.Succeeded, d.Response.Status))
	}
	return out
}

// gate is a file a pipeline step waits for, so a test holds a run active
// as long as it needs, without timing guesses. The step also creates the
// started file, so the test can tell that the runner reached it.
type gate struct {
	release, started string
}

func newGate(t *testing.T) gate {
	t.Helper()
	dir := t.TempDir()
	g := gate{release: filepath.Join(dir, "release"), started: filepath.Join(dir, "started")}
	// Release on the way out so a run still waiting ends quickly.
	t.Cleanup(func() { _ = os.WriteFile(g.release, nil, 0o644) })
	return g
}

// step returns a shell command that marks the step started, then waits up
// to two minutes for the gate to open.
func (g gate) step() string {
	return fmt.Sprintf("touch %q; n=0; while [ ! -e %q ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n+1)); done", g.started, g.release)
}

// waitStarted polls until a run reached the gate.
func (g gate) waitStarted(e *env) {
	e.t.Helper()
	deadline := time.Now().Add(runTimeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(g.started); err == nil {
			return
		}
		e.sleep()
	}
	e.t.Fatalf("no run reached the gate within %s", runTimeout)
}

func (g gate) open(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(g.release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// postHook sends a webhook request to octavo's /hooks with the given
// headers (Host and Content-Length are set from the request) and returns
// the response status and body.
func (e *env) postHook(headers map[string]string, body string) (int, string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.sidecar.URL+"/hooks", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range headers {
		switch strings.ToLower(k) {
		case "host", "content-length", "accept-encoding":
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(respBody)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // since Go 1.24, Read never returns an error
	return hex.EncodeToString(b)
}

// runIDFromURL returns the run id at the end of a run page URL
// (…/runs/{id}).
func runIDFromURL(t *testing.T, target string) uint {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("parse target_url %q: %v", target, err)
	}
	i := strings.LastIndex(u.Path, "/runs/")
	if i < 0 {
		t.Fatalf("target_url %q does not point at /runs/{id}", target)
	}
	id, err := strconv.ParseUint(strings.Trim(u.Path[i+len("/runs/"):], "/"), 10, 64)
	if err != nil {
		t.Fatalf("target_url %q does not end in a run id: %v", target, err)
	}
	return uint(id)
}
