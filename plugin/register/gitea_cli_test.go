package register

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/octavo-ci/octavo/plugin/forge"
	"github.com/octavo-ci/octavo/plugin/internal/giteatest"
)

// giteaRegister runs register in-process against inst with vars as the
// environment and returns the exit code and the combined output. It fails
// the test when the output shows the token or the webhook secret.
func giteaRegister(t *testing.T, inst *giteatest.Instance, vars map[string]string, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := env{getenv: func(k string) string { return vars[k] }, hc: &http.Client{Timeout: 30 * time.Second}, pollEvery: 50 * time.Millisecond}
	code := run(t.Context(), args, e, &out, &errOut)
	text := out.String() + errOut.String()
	for _, secret := range []string{inst.Token, vars["OCTAVO_FORGE_TOKEN"], vars["OCTAVO_WEBHOOK_SECRET"]} {
		if secret != "" && strings.Contains(text, secret) {
			t.Errorf("output shows a token or secret:\n%s", text)
		}
	}
	return code, text
}

func randomName(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// TestGiteaRegisterErrors checks what an operator sees when the token,
// the repository or the forge URL is wrong. A rejected token used to show
// only the forge's 401, without naming OCTAVO_FORGE_TOKEN, and an
// unreachable forge did not name OCTAVO_FORGE_URL.
func TestGiteaRegisterErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("real Gitea test skipped with -short")
	}
	inst := giteatest.Shared(t)
	repo, err := inst.CreateRepo(t.Context(), randomName(t, "register-errors-"))
	if err != nil {
		t.Fatal(err)
	}

	readOnly := createToken(t, inst, "read:repository")

	tests := []struct {
		name     string
		forgeURL string // "" means the instance
		token    string
		repo     string
		want     []string
	}{
		{"wrong token", "", "0123456789abcdef0123456789abcdef01234567", repo.FullName, []string{"401", "OCTAVO_FORGE_TOKEN"}},
		{"unknown repository", "", inst.Token, inst.Admin + "/no-such-repo", []string{"404", inst.Admin + "/no-such-repo"}},
		{"unknown owner", "", inst.Token, "nobody-here/demo", []string{"404", "nobody-here/demo"}},
		{"token without write scope", "", readOnly, repo.FullName, []string{"403", "OCTAVO_FORGE_TOKEN", "write:repository"}},
		{"user given as organisation", "", inst.Token, "--org " + inst.Admin, []string{"404", "--org takes an organisation, not a user"}},
		{"unreachable forge", "http://127.0.0.1:1/", inst.Token, repo.FullName, []string{"connection refused", "OCTAVO_FORGE_URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forgeURL := inst.URL
			if tt.forgeURL != "" {
				forgeURL = tt.forgeURL
			}
			vars := map[string]string{
				"OCTAVO_FORGE_URL":      forgeURL,
				"OCTAVO_FORGE_TOKEN":    tt.token,
				"OCTAVO_WEBHOOK_SECRET": "errors-secret-0c1d",
				"OCTAVO_PUBLIC_URL":     "http://127.0.0.1:9/ci/",
				"OCTAVO_DATA_DIR":       t.TempDir(),
			}
			code, out := giteaRegister(t, inst, vars, strings.Fields(tt.repo)...)
			if code != exitFailed {
				t.Errorf("got exit %d, want %d", code, exitFailed)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("got output without %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestGiteaRegisterOrganisation registers an organisation hook twice on a
// real Gitea, then removes it, leaving another hook of the organisation
// alone.
func TestGiteaRegisterOrganisation(t *testing.T) {
	if testing.Short() {
		t.Skip("real Gitea test skipped with -short")
	}
	inst := giteatest.Shared(t)
	ctx := t.Context()
	org := randomName(t, "register-org-")
	if err := inst.Do(ctx, http.MethodPost, "/orgs", map[string]any{"username": org}, nil); err != nil {
		t.Fatal(err)
	}
	otherReq := map[string]any{"type": "gitea", "active": true, "events": []string{"push"},
		"config": map[string]string{"url": "http://127.0.0.1:9/someone-else", "content_type": "json"}}
	var other giteatest.Hook
	if err := inst.Do(ctx, http.MethodPost, "/orgs/"+org+"/hooks", otherReq, &other); err != nil {
		t.Fatal(err)
	}

	dataDir := t.TempDir()
	vars := map[string]string{
		"OCTAVO_FORGE_URL":      inst.URL,
		"OCTAVO_FORGE_TOKEN":    inst.Token,
		"OCTAVO_WEBHOOK_SECRET": "org-secret-5e2b",
		"OCTAVO_PUBLIC_URL":     "http://127.0.0.1:9/ci/",
		"OCTAVO_DATA_DIR":       dataDir,
	}
	ourURL := "http://127.0.0.1:9/ci/hooks"
	hooks := func() (ours []giteatest.Hook) {
		t.Helper()
		var all []giteatest.Hook
		if err := inst.Do(ctx, http.MethodGet, "/orgs/"+org+"/hooks", nil, &all); err != nil {
			t.Fatal(err)
		}
		otherSeen := false
		for _, h := range all {
			switch {
			case h.Config["url"] == ourURL:
				ours = append(ours, h)
			case h.ID == other.ID:
				otherSeen = true
				if !slices.Equal(h.Events, []string{"push"}) || !h.Active {
					t.Errorf("got the other hook as %+v, want it untouched", h)
				}
			}
		}
		if !otherSeen {
			t.Errorf("the other hook %d is gone", other.ID)
		}
		return ours
	}

	for _, when := range []string{"first run", "second run"} {
		code, out := giteaRegister(t, inst, vars, "--org", org)
		if code != exitOK {
			t.Fatalf("%s: got exit %d, want 0:\n%s", when, code, out)
		}
		ours := hooks()
		if len(ours) != 1 {
			t.Fatalf("%s: got %d hooks with URL %s, want 1", when, len(ours), ourURL)
		}
		for _, e := range forge.HookEvents {
			if !slices.Contains(ours[0].Events, e) {
				t.Errorf("%s: got events %v, want %s among them", when, ours[0].Events, e)
			}
		}
		if !ours[0].Active || ours[0].Config["content_type"] != "json" {
			t.Errorf("%s: got hook %+v, want active with content type json", when, ours[0])
		}
	}

	code, out := giteaRegister(t, inst, vars, "--org", org, "--remove")
	if code != exitOK || !strings.Contains(out, "removed hook") {
		t.Fatalf("removal: got exit %d, want 0 and removed:\n%s", code, out)
	}
	if ours := hooks(); len(ours) != 0 {
		t.Errorf("got %d hooks with our URL after --remove, want 0", len(ours))
	}
	code, out = giteaRegister(t, inst, vars, "--org", org, "--remove")
	if code != exitOK || !strings.Contains(out, "nothing removed") {
		t.Errorf("second removal: got exit %d, want 0 and nothing removed:\n%s", code, out)
	}
}

// createToken creates an API token of the admin with the given scopes,
// signing in with the admin's password as Gitea requires for this call.
func createToken(t *testing.T, inst *giteatest.Instance, scopes ...string) string {
	t.Helper()
	body, err := json.Marshal(map[string]any{"name": randomName(t, "scoped-"), "scopes": scopes})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, inst.URL+"/api/v1/users/"+inst.Admin+"/tokens", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(inst.Admin, inst.Password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		SHA1 string `json:"sha1"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create a token with scopes %v: got HTTP %d, %v", scopes, resp.StatusCode, err)
	}
	return tok.SHA1
}

// TestGiteaRegisterEmptyRepository registers on a repository without
// commits, the usual state before the first push. Gitea refuses a test
// delivery there with a 404, and register used to report the hook it had
// just created as a failure, with a hint about a wrong repository name.
func TestGiteaRegisterEmptyRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("real Gitea test skipped with -short")
	}
	inst := giteatest.Shared(t)
	ctx := t.Context()
	var repo giteatest.Repo
	if err := inst.Do(ctx, http.MethodPost, "/user/repos", map[string]any{"name": randomName(t, "register-empty-")}, &repo); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"OCTAVO_FORGE_URL":      inst.URL,
		"OCTAVO_FORGE_TOKEN":    inst.Token,
		"OCTAVO_WEBHOOK_SECRET": "empty-secret-9d3a",
		"OCTAVO_PUBLIC_URL":     "http://127.0.0.1:9/ci/",
		"OCTAVO_DATA_DIR":       t.TempDir(),
	}

	for _, when := range []string{"first run", "second run"} {
		code, out := giteaRegister(t, inst, vars, "--wait", "5s", repo.FullName)
		if code != exitOK {
			t.Fatalf("%s: got exit %d, want 0:\n%s", when, code, out)
		}
		if !strings.Contains(out, "empty repository") || !strings.Contains(out, "push a commit") {
			t.Errorf("%s: got output without the empty repository note:\n%s", when, out)
		}
		hooks, err := inst.Hooks(ctx, repo.FullName)
		if err != nil {
			t.Fatal(err)
		}
		if len(hooks) != 1 || hooks[0].Config["url"] != "http://127.0.0.1:9/ci/hooks" {
			t.Errorf("%s: got hooks %+v, want our one hook", when, hooks)
		}
	}
}
