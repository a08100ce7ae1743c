package register

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/forge"
	"github.com/octavo-ci/octavo/plugin/store"
)

const (
	fakeToken  = "register-test-token-5d41402abc4b2a76b9719d911017c592"
	fakeSecret = "register-test-secret-7c6a180b36896a0a8c02787eeafb0e4c"
)

// fakeHook is a hook as the fake forge stores it, secret included.
type fakeHook struct {
	forge.Hook
	secret string
}

// fakeForge keeps hooks in memory and serves the hook API the way Gitea
// 1.26 does (expanded pull_request events, no secret in responses). A test
// delivery is "recorded by octavo serve" only when the hook's secret is the
// configured one, as a real serve rejects a bad signature.
type fakeForge struct {
	t        *testing.T
	srv      *httptest.Server
	st       *store.Store // octavo serve's database; nil means no delivery is recorded
	secret   string       // the secret octavo serve accepts
	mu       sync.Mutex
	nextID   int64
	repoHook map[string][]*fakeHook
	orgHook  map[string][]*fakeHook
	tests    int
	reqs     []string
}

func newFakeForge(t *testing.T, st *store.Store) *fakeForge {
	t.Helper()
	f := &fakeForge{t: t, st: st, secret: fakeSecret, nextID: 100, repoHook: map[string][]*fakeHook{}, orgHook: map[string][]*fakeHook{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.handle))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeForge) handle(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, r.Method+" "+r.URL.Path)
	if r.Header.Get("Authorization") != "token "+fakeToken {
		writeJSON(w, 401, map[string]string{"message": "invalid username, password or token"})
		return
	}

	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/v1/"), "/")
	switch {
	case len(parts) == 3 && parts[0] == "repos" && r.Method == "GET":
		if parts[2] == "missing" {
			writeJSON(w, 404, map[string]string{"message": "not found"})
			return
		}
		// The forge's own spelling, which deliveries carry.
		writeJSON(w, 200, map[string]any{"full_name": "Alice/" + parts[2], "name": parts[2], "owner": map[string]string{"login": "Alice"}})
	case len(parts) >= 4 && parts[0] == "repos" && parts[3] == "hooks":
		f.hooks(w, r, f.repoHook, "Alice/"+parts[2], parts[4:])
	case len(parts) >= 3 && parts[0] == "orgs" && parts[2] == "hooks":
		f.hooks(w, r, f.orgHook, parts[1], parts[3:])
	default:
		writeJSON(w, 404, map[string]string{"message": "not found"})
	}
}

func (f *fakeForge) hooks(w http.ResponseWriter, r *http.Request, all map[string][]*fakeHook, owner string, rest []string) {
	switch {
	case len(rest) == 0 && r.Method == "GET":
		out := []forge.Hook{}
		for _, h := range all[owner] {
			out = append(out, h.Hook)
		}
		w.Header().Set("X-Total-Count", strconv.Itoa(len(out)))
		writeJSON(w, 200, out)
	case len(rest) == 0 && r.Method == "POST":
		var body struct {
			Type         string   `json:"type"`
			Active       bool     `json:"active"`
			Events       []string `json:"events"`
			BranchFilter string   `json:"branch_filter"`
			Config       struct {
				URL         string `json:"url"`
				ContentType string `json:"content_type"`
				Secret      string `json:"secret"`
			} `json:"config"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeJSON(w, 422, map[string]string{"message": err.Error()})
			return
		}
		f.nextID++
		h := &fakeHook{Hook: forge.Hook{
			ID: f.nextID, Type: body.Type, Active: body.Active, Events: expand(body.Events), BranchFilter: body.BranchFilter,
			Config: forge.HookConfig{URL: body.Config.URL, ContentType: body.Config.ContentType},
		}, secret: body.Config.Secret}
		all[owner] = append(all[owner], h)
		writeJSON(w, 201, h.Hook)
	case len(rest) == 1 && r.Method == "DELETE":
		id, _ := strconv.ParseInt(rest[0], 10, 64)
		hooks := all[owner]
		i := slices.IndexFunc(hooks, func(h *fakeHook) bool { return h.ID == id })
		if i < 0 {
			writeJSON(w, 404, map[string]string{"message": "not found"})
			return
		}
		all[owner] = slices.Delete(hooks, i, i+1)
		w.WriteHeader(204)
	case len(rest) == 2 && rest[1] == "tests" && r.Method == "POST":
		id, _ := strconv.ParseInt(rest[0], 10, 64)
		i := slices.IndexFunc(all[owner], func(h *fakeHook) bool { return h.ID == id })
		if i < 0 {
			writeJSON(w, 404, map[string]string{"message": "not found"})
			return
		}
		f.tests++
		if f.st != nil && all[owner][i].secret == f.secret {
			row := &store.Delivery{DeliveryID: fmt.Sprintf("test-%d", f.tests), Event: "push", RepoFullName: owner}
			if _, err := store.InsertDelivery(f.st.DB, row); err != nil {
				f.t.Errorf("record delivery: %v", err)
			}
		}
		w.WriteHeader(204)
	default:
		writeJSON(w, 405, map[string]string{"message": "method not allowed"})
	}
}

// expand lists pull_request's sub-events as Gitea does in its responses.
func expand(events []string) []string {
	out := slices.Clone(events)
	if slices.Contains(events, "pull_request") {
		out = append(out, "pull_request_sync", "pull_request_assign", "pull_request_label")
	}
	return out
}

func (f *fakeForge) addHook(owner string, h fakeHook, org bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	h.ID = f.nextID
	if org {
		f.orgHook[owner] = append(f.orgHook[owner], &h)
	} else {
		f.repoHook[owner] = append(f.repoHook[owner], &h)
	}
}

func (f *fakeForge) repoHooks(owner string) []fakeHook {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeHook
	for _, h := range f.repoHook[owner] {
		out = append(out, *h)
	}
	return out
}

func (f *fakeForge) testCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tests
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// world is one test's settings, database and fake forge.
type world struct {
	t       *testing.T
	dataDir string
	st      *store.Store
	forge   *fakeForge
	vars    map[string]string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	dataDir := t.TempDir()
	st, err := store.Open(t.Context(), store.Options{DSN: filepath.Join(dataDir, "octavo.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := newFakeForge(t, st)
	return &world{t: t, dataDir: dataDir, st: st, forge: f, vars: map[string]string{
		"OCTAVO_FORGE_URL":      f.srv.URL,
		"OCTAVO_FORGE_TOKEN":    fakeToken,
		"OCTAVO_WEBHOOK_SECRET": fakeSecret,
		"OCTAVO_PUBLIC_URL":     "http://127.0.0.1:8080/ci/",
		"OCTAVO_DATA_DIR":       dataDir,
	}}
}

const hookURL = "http://127.0.0.1:8080/ci/hooks"

// register runs the command and returns its exit code and output.
func (w *world) register(args ...string) (code int, stdout, stderr string) {
	w.t.Helper()
	var out, errOut bytes.Buffer
	e := env{
		getenv:    func(k string) string { return w.vars[k] },
		hc:        &http.Client{Timeout: 5 * time.Second},
		pollEvery: 10 * time.Millisecond,
	}
	code = run(w.t.Context(), args, e, &out, &errOut)
	for _, s := range []string{out.String(), errOut.String()} {
		if strings.Contains(s, fakeToken) || strings.Contains(s, fakeSecret) {
			w.t.Errorf("output shows the token or secret:\n%s", s)
		}
	}
	return code, out.String(), errOut.String()
}

func ourHooks(hooks []fakeHook) []fakeHook {
	var out []fakeHook
	for _, h := range hooks {
		if h.Config.URL == hookURL {
			out = append(out, h)
		}
	}
	return out
}

func TestRegisterCreatesHook(t *testing.T) {
	w := newWorld(t)
	other := fakeHook{Hook: forge.Hook{Type: "slack", Active: true, Events: []string{"push"}, Config: forge.HookConfig{URL: "https://chat.example.com/x", ContentType: "json"}}, secret: "theirs"}
	w.forge.addHook("Alice/demo", other, false)

	code, out, errOut := w.register("alice/demo")

	if code != exitOK {
		t.Fatalf("got exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	hooks := w.forge.repoHooks("Alice/demo")
	ours := ourHooks(hooks)
	if len(ours) != 1 {
		t.Fatalf("got %d hooks with our URL, want 1: %+v", len(ours), hooks)
	}
	h := ours[0]
	if h.Type != "gitea" || !h.Active || h.Config.ContentType != "json" || h.BranchFilter != "*" || h.secret != fakeSecret {
		t.Errorf("got hook %+v with secret set %v, want an active gitea json hook for all branches with the configured secret", h.Hook, h.secret == fakeSecret)
	}
	for _, e := range forge.HookEvents {
		if !slices.Contains(h.Events, e) {
			t.Errorf("got events %v, want %s among them", h.Events, e)
		}
	}
	if len(hooks) != 2 || hooks[0].Config.URL != other.Config.URL || hooks[0].secret != "theirs" {
		t.Errorf("got hooks %+v, want the other hook untouched beside ours", hooks)
	}
	for _, want := range []string{"created: hook", hookURL, "push, create, delete, pull_request", "test delivery: arrived"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRegisterTwiceLeavesHookUnchanged(t *testing.T) {
	w := newWorld(t)

	if code, out, errOut := w.register("alice/demo"); code != exitOK {
		t.Fatalf("first run: exit %d\n%s%s", code, out, errOut)
	}
	first := ourHooks(w.forge.repoHooks("Alice/demo"))
	code, out, errOut := w.register("alice/demo")

	if code != exitOK {
		t.Fatalf("second run: got exit %d, want 0\n%s%s", code, out, errOut)
	}
	second := ourHooks(w.forge.repoHooks("Alice/demo"))
	if len(second) != 1 || second[0].ID != first[0].ID {
		t.Errorf("got hooks %+v after the second run, want hook %d kept", second, first[0].ID)
	}
	if !strings.Contains(out, "unchanged: hook") {
		t.Errorf("output lacks \"unchanged\":\n%s", out)
	}
}

func TestRegisterReplacesHookWithOldSecret(t *testing.T) {
	w := newWorld(t)
	stale := fakeHook{Hook: forge.Hook{Type: "gitea", Active: true, BranchFilter: "*", Events: expand(forge.HookEvents), Config: forge.HookConfig{URL: hookURL, ContentType: "json"}}, secret: "old-secret"}
	w.forge.addHook("Alice/demo", stale, false)
	w.vars["OCTAVO_PUBLIC_URL"] = "http://127.0.0.1:8080/ci" // no trailing slash: same hook URL

	code, out, errOut := w.register("--wait", "300ms", "alice/demo")

	if code != exitOK {
		t.Fatalf("got exit %d, want 0\n%s%s", code, out, errOut)
	}
	ours := ourHooks(w.forge.repoHooks("Alice/demo"))
	if len(ours) != 1 || ours[0].secret != fakeSecret {
		t.Fatalf("got %d hooks, secret replaced %v, want one hook with the configured secret", len(ours), len(ours) == 1 && ours[0].secret == fakeSecret)
	}
	if !strings.Contains(out, "updated: hook") || !strings.Contains(out, "replaces hook") || !strings.Contains(out, "test delivery: arrived") {
		t.Errorf("output lacks the replacement and the arrival:\n%s", out)
	}
	if got := w.forge.testCount(); got != 2 {
		t.Errorf("got %d test deliveries, want 2 (the old hook's, then the new one's)", got)
	}
}

func TestRegisterFixesResetEvents(t *testing.T) {
	w := newWorld(t)
	// What a PATCH without events leaves behind on Gitea: push only.
	pushOnly := fakeHook{Hook: forge.Hook{Type: "gitea", Active: true, Events: []string{"push"}, Config: forge.HookConfig{URL: hookURL, ContentType: "json"}}, secret: fakeSecret}
	w.forge.addHook("Alice/demo", pushOnly, false)
	w.forge.addHook("Alice/demo", pushOnly, false) // a duplicate

	code, out, errOut := w.register("alice/demo")

	if code != exitOK {
		t.Fatalf("got exit %d, want 0\n%s%s", code, out, errOut)
	}
	ours := ourHooks(w.forge.repoHooks("Alice/demo"))
	if len(ours) != 1 {
		t.Fatalf("got %d hooks with our URL, want 1", len(ours))
	}
	for _, e := range forge.HookEvents {
		if !slices.Contains(ours[0].Events, e) {
			t.Errorf("got events %v, want %s among them", ours[0].Events, e)
		}
	}
	if !strings.Contains(out, "removed duplicate hook") {
		t.Errorf("output lacks the duplicate removal:\n%s", out)
	}
}

func TestRegisterRemove(t *testing.T) {
	w := newWorld(t)
	other := fakeHook{Hook: forge.Hook{Type: "gitea", Active: true, Events: []string{"push"}, Config: forge.HookConfig{URL: "http://127.0.0.1:9999/other/hooks", ContentType: "json"}}}
	w.forge.addHook("Alice/demo", other, false)
	if code, out, errOut := w.register("alice/demo"); code != exitOK {
		t.Fatalf("register: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut := w.register("alice/demo", "--remove")

	if code != exitOK {
		t.Fatalf("got exit %d, want 0\n%s%s", code, out, errOut)
	}
	hooks := w.forge.repoHooks("Alice/demo")
	if len(hooks) != 1 || hooks[0].Config.URL != other.Config.URL {
		t.Errorf("got hooks %+v, want only the other hook", hooks)
	}
	if !strings.Contains(out, "removed hook") {
		t.Errorf("output lacks \"removed hook\":\n%s", out)
	}

	code, out, _ = w.register("--remove", "alice/demo")
	if code != exitOK || !strings.Contains(out, "nothing removed") {
		t.Errorf("second removal: got exit %d and %q, want 0 and nothing removed", code, out)
	}
}

func TestRegisterTestDeliveryMissing(t *testing.T) {
	w := newWorld(t)
	w.forge.secret = "what-serve-expects" // serve rejects every delivery

	code, out, _ := w.register("--wait", "200ms", "alice/demo")

	if code != exitNotDelivered {
		t.Errorf("got exit %d, want %d", code, exitNotDelivered)
	}
	for _, want := range []string{"none arrived within 200ms", "[webhook] on Gitea 1.26 and Forgejo", "[security] on Gitea 1.27", "ALLOWED_HOST_LIST"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := len(ourHooks(w.forge.repoHooks("Alice/demo"))); n != 1 {
		t.Errorf("got %d hooks, want the created hook left in place", n)
	}
}

func TestRegisterPublicHostHasNoAllowListHint(t *testing.T) {
	w := newWorld(t)
	w.forge.secret = "what-serve-expects"
	w.vars["OCTAVO_PUBLIC_URL"] = "http://203.0.113.7:8080/"

	code, out, _ := w.register("--wait", "100ms", "alice/demo")

	if code != exitNotDelivered {
		t.Errorf("got exit %d, want %d", code, exitNotDelivered)
	}
	if strings.Contains(out, "ALLOWED_HOST_LIST") {
		t.Errorf("output names ALLOWED_HOST_LIST for a public address:\n%s", out)
	}
}

func TestRegisterWithoutDatabase(t *testing.T) {
	w := newWorld(t)
	w.vars["OCTAVO_DATA_DIR"] = filepath.Join(t.TempDir(), "never-started")

	code, out, errOut := w.register("alice/demo")

	if code != exitOK {
		t.Fatalf("got exit %d, want 0\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "cannot be checked") || !strings.Contains(out, "no octavo database") {
		t.Errorf("output lacks the unchecked delivery note:\n%s", out)
	}
	if _, err := filepath.Glob(filepath.Join(w.vars["OCTAVO_DATA_DIR"], "*")); err != nil {
		t.Fatal(err)
	}
	if matches, _ := filepath.Glob(filepath.Join(w.vars["OCTAVO_DATA_DIR"], "*.db")); len(matches) != 0 {
		t.Errorf("register created %v, want no database of its own", matches)
	}
}

func TestRegisterOrganisation(t *testing.T) {
	w := newWorld(t)

	code, out, errOut := w.register("--org", "team")
	if code != exitOK {
		t.Fatalf("got exit %d, want 0\n%s%s", code, out, errOut)
	}
	code, out, errOut = w.register("--org", "team")
	if code != exitOK {
		t.Fatalf("second run: got exit %d, want 0\n%s%s", code, out, errOut)
	}

	w.forge.mu.Lock()
	hooks := w.forge.orgHook["team"]
	w.forge.mu.Unlock()
	if len(hooks) != 1 || hooks[0].Config.URL != hookURL || hooks[0].secret != fakeSecret {
		t.Errorf("got organisation hooks %+v, want one hook with our URL and secret", hooks)
	}
	if !strings.Contains(out, "not available for organisation hooks") {
		t.Errorf("output lacks the organisation test note:\n%s", out)
	}
}

func TestRegisterErrors(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		vars   map[string]string // overrides; "" deletes
		code   int
		stderr string
	}{
		{"no repository", nil, nil, exitUsage, "missing repository"},
		{"repository without owner", []string{"demo"}, nil, exitUsage, "want OWNER/NAME"},
		{"repository and organisation", []string{"--org", "team", "alice/demo"}, nil, exitUsage, "not both"},
		{"two repositories", []string{"alice/a", "alice/b"}, nil, exitUsage, "one repository at a time"},
		{"negative wait", []string{"--wait", "-1s", "alice/demo"}, nil, exitUsage, "invalid --wait"},
		{"missing forge URL", []string{"alice/demo"}, map[string]string{"OCTAVO_FORGE_URL": ""}, exitFailed, "OCTAVO_FORGE_URL is missing"},
		{"missing token", []string{"alice/demo"}, map[string]string{"OCTAVO_FORGE_TOKEN": ""}, exitFailed, "OCTAVO_FORGE_TOKEN is missing"},
		{"missing secret", []string{"alice/demo"}, map[string]string{"OCTAVO_WEBHOOK_SECRET": ""}, exitFailed, "OCTAVO_WEBHOOK_SECRET is missing"},
		{"wrong token", []string{"alice/demo"}, map[string]string{"OCTAVO_FORGE_TOKEN": "wrong-token-value"}, exitFailed, "401"},
		{"unknown repository", []string{"alice/missing"}, nil, exitFailed, "look up repository alice/missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			for k, v := range tt.vars {
				w.vars[k] = v
			}

			code, _, errOut := w.register(tt.args...)

			if code != tt.code {
				t.Errorf("got exit %d, want %d\nstderr:\n%s", code, tt.code, errOut)
			}
			if !strings.Contains(errOut, tt.stderr) {
				t.Errorf("got stderr %q, want it to contain %q", errOut, tt.stderr)
			}
			if strings.Contains(errOut, "wrong-token-value") {
				t.Errorf("stderr shows the token: %s", errOut)
			}
		})
	}
}

func TestPrivateHost(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"127.0.0.1", true},
		{"localhost", true},
		{"::1", true},
		{"10.1.2.3", true},
		{"192.168.0.10", true},
		{"172.16.5.4", true},
		{"169.254.1.1", true},
		{"0.0.0.0", true},
		{"203.0.113.7", false},
		{"2001:db8::1", false},
	}
	for _, tt := range tests {
		if got := privateHost(context.Background(), tt.host); got != tt.want {
			t.Errorf("privateHost(%q): got %v, want %v", tt.host, got, tt.want)
		}
	}
}

// TestRegisterNotesDefaultPublicURL leaves OCTAVO_PUBLIC_URL unset. The hook
// then points at the listen address, which only a forge on the same host
// reaches, and register used to say nothing about where that URL came from.
func TestRegisterNotesDefaultPublicURL(t *testing.T) {
	w := newWorld(t)
	delete(w.vars, "OCTAVO_PUBLIC_URL")

	code, out, errOut := w.register("--wait", "0", "alice/demo")

	if code != exitOK {
		t.Fatalf("got exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "http://127.0.0.1:8080/hooks") {
		t.Errorf("output lacks the default hook URL:\n%s", out)
	}
	for _, want := range []string{"OCTAVO_PUBLIC_URL is not set", "http://127.0.0.1:8080/"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

// TestRegisterNoNoteWithPublicURL checks that a set public URL gets no note.
func TestRegisterNoNoteWithPublicURL(t *testing.T) {
	w := newWorld(t)

	_, _, errOut := w.register("--wait", "0", "alice/demo")

	if strings.Contains(errOut, "OCTAVO_PUBLIC_URL") {
		t.Errorf("got stderr %q, want no note about the public URL", errOut)
	}
}

// TestRegisterMasksPublicURLPassword registers with a public URL that
// carries basic-auth credentials. The forge needs them in the hook URL,
// but register used to print the password with every URL it showed.
func TestRegisterMasksPublicURLPassword(t *testing.T) {
	const password = "basic-auth-pw-61d0"
	w := newWorld(t)
	w.vars["OCTAVO_PUBLIC_URL"] = "http://ci:" + password + "@127.0.0.1:8080/ci/"

	code, out, errOut := w.register("alice/demo")
	_, removeOut, removeErr := w.register("--remove", "alice/demo")

	if code != exitNotDelivered && code != exitOK {
		t.Fatalf("got exit %d, want 0 or 3\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, text := range []string{out, errOut, removeOut, removeErr} {
		if strings.Contains(text, password) {
			t.Errorf("output shows the password:\n%s", text)
		}
	}
	if !strings.Contains(out, "http://ci:xxxxx@127.0.0.1:8080/ci/hooks") {
		t.Errorf("output lacks the masked hook URL:\n%s", out)
	}
	if !strings.Contains(removeOut, "removed hook") {
		t.Errorf("got removal output %q, want the hook found by its full URL and removed", removeOut)
	}
}

// TestRegisterEchoingForgeLeaksNothing runs register against a forge that
// echoes the Authorization header and the request body in every error,
// at each step register takes.
func TestRegisterEchoingForgeLeaksNothing(t *testing.T) {
	steps := []struct{ name, step string }{
		{"repository lookup rejected", "GET /api/v1/repos/"},
		{"hook list rejected", "GET /api/v1/repos/alice/demo/hooks"},
		{"hook creation rejected", "POST /api/v1/repos/alice/demo/hooks"},
	}
	for _, tt := range steps {
		step := tt.step
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if strings.HasPrefix(r.Method+" "+r.URL.Path, step) && (step != "GET /api/v1/repos/" || !strings.HasSuffix(r.URL.Path, "/hooks")) {
					http.Error(w, `{"message":"rejected","auth":"`+r.Header.Get("Authorization")+`","request":`+string(body)+`}`, http.StatusUnprocessableEntity)
					return
				}
				switch {
				case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/hooks"):
					writeJSON(w, http.StatusOK, []forge.Hook{})
				default:
					writeJSON(w, http.StatusOK, map[string]any{"full_name": "alice/demo", "name": "demo", "owner": map[string]string{"login": "alice"}})
				}
			}))
			t.Cleanup(srv.Close)
			w := newWorld(t)
			w.vars["OCTAVO_FORGE_URL"] = srv.URL

			code, out, errOut := w.register("alice/demo")

			if code != exitFailed || !strings.Contains(errOut, "rejected") {
				t.Errorf("got exit %d and stderr %q, want 1 and the forge's message", code, errOut)
			}
			for _, s := range []string{fakeToken, fakeSecret} {
				if strings.Contains(out+errOut, s) {
					t.Errorf("output shows a token or secret:\n%s%s", out, errOut)
				}
			}
		})
	}
}
