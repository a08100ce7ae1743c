package forge_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/octavo-ci/octavo/plugin/forge"
	"github.com/octavo-ci/octavo/plugin/internal/giteatest"
)

func TestMain(m *testing.M) { os.Exit(giteatest.Main(m)) }

// realGitea returns the shared real Gitea, a client for it, and a fresh
// repository with one commit on main. It skips under -short: the first
// use builds Gitea, which takes minutes without a cached build.
func realGitea(t *testing.T) (*giteatest.Instance, *forge.Client, giteatest.Repo, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("real Gitea test skipped with -short")
	}
	inst := giteatest.Shared(t)
	repo, err := inst.CreateRepo(t.Context(), "forge-"+randomSuffix(t))
	if err != nil {
		t.Fatal(err)
	}
	sha, err := inst.Commit(t.Context(), repo.FullName, "main")
	if err != nil {
		t.Fatal(err)
	}
	return inst, forge.New(inst.URL+"/", inst.Token, forge.KindGitea, nil), repo, sha
}

func randomSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func TestGiteaCreateStatusReadBack(t *testing.T) {
	inst, c, repo, sha := realGitea(t)
	states := []forge.StatusState{forge.StatePending, forge.StateSuccess, forge.StateError, forge.StateFailure, forge.StateWarning}

	for _, s := range states {
		got, err := c.CreateStatus(t.Context(), repo.FullName, sha, forge.StatusOptions{
			State: s, Context: "octavo/" + string(s), Description: "state " + string(s) + " é ✓",
			TargetURL: "http://127.0.0.1:8080/runs/1",
		})
		if err != nil {
			t.Fatalf("create %s status: %v", s, err)
		}
		if got.State != s {
			t.Errorf("got created state %q, want %q", got.State, s)
		}
	}
	// A newer status on one context replaces the older in the combined view.
	if _, err := c.CreateStatus(t.Context(), repo.FullName, sha, forge.StatusOptions{State: forge.StateSuccess, Context: "octavo/pending", Description: "Passed in 3s"}); err != nil {
		t.Fatal(err)
	}

	ours, err := c.GetCombinedStatus(t.Context(), repo.FullName, sha)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := inst.CombinedStatus(t.Context(), repo.FullName, sha)
	if err != nil {
		t.Fatal(err)
	}
	if ours.SHA != sha || len(ours.Statuses) != len(states) {
		t.Fatalf("got combined status of %s with %d contexts, want %s with %d", ours.SHA, len(ours.Statuses), sha, len(states))
	}
	for _, s := range states {
		ctx := "octavo/" + string(s)
		want := s
		if s == forge.StatePending {
			want = forge.StateSuccess
		}
		st, ok := theirs.Context(ctx)
		if !ok || st.State != string(want) {
			t.Errorf("context %s: got %q (found %v), want %q", ctx, st.State, ok, want)
		}
		i := slices.IndexFunc(ours.Statuses, func(x forge.Status) bool { return x.Context == ctx })
		if i < 0 || ours.Statuses[i].State != want {
			t.Errorf("context %s through the client: got %+v, want state %q", ctx, ours.Statuses, want)
		}
	}
	if st, _ := theirs.Context("octavo/warning"); st.Description != "state warning é ✓" || st.TargetURL != "http://127.0.0.1:8080/runs/1" {
		t.Errorf("got description %q target %q, want them stored as sent", st.Description, st.TargetURL)
	}
}

func TestGiteaCreateStatusUnknownCommit(t *testing.T) {
	_, c, repo, _ := realGitea(t)

	_, err := c.CreateStatus(t.Context(), repo.FullName, strings.Repeat("0", 40), forge.StatusOptions{State: forge.StateSuccess, Context: "octavo"})

	var fe *forge.Error
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want a *forge.Error", err)
	}
	// Gitea 1.26 responds 500, not 404, for a commit it does not have.
	if fe.StatusCode != http.StatusInternalServerError || !fe.Temporary() {
		t.Errorf("got %d temporary %v, want 500 and temporary", fe.StatusCode, fe.Temporary())
	}
}

func TestGiteaBadToken(t *testing.T) {
	inst, _, repo, sha := realGitea(t)
	const badToken = "0123456789abcdef0123456789abcdef01234567"
	c := forge.New(inst.URL, badToken, forge.KindGitea, nil)

	_, err := c.CreateStatus(t.Context(), repo.FullName, sha, forge.StatusOptions{State: forge.StatePending, Context: "octavo"})

	if !errors.Is(err, forge.ErrUnauthorized) {
		t.Errorf("got %v, want ErrUnauthorized", err)
	}
	if err != nil && strings.Contains(err.Error(), badToken) {
		t.Errorf("error contains the token: %v", err)
	}
}

func TestGiteaGetRepoAndBranches(t *testing.T) {
	_, c, repo, sha := realGitea(t)

	got, err := c.GetRepo(t.Context(), repo.FullName)
	if err != nil {
		t.Fatal(err)
	}
	if got.FullName != repo.FullName || got.Visibility != forge.VisibilityPublic || got.DefaultBranch != "main" {
		t.Errorf("got %+v, want public %s on main", got, repo.FullName)
	}
	if got.CloneURL != repo.CloneURL || got.ObjectFormat != "sha1" {
		t.Errorf("got clone URL %q object format %q, want %q and sha1", got.CloneURL, got.ObjectFormat, repo.CloneURL)
	}

	branches, err := c.ListBranches(t.Context(), repo.FullName)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(branches, func(b forge.Branch) bool { return b.Name == "main" })
	if i < 0 || branches[i].SHA != sha {
		t.Errorf("got branches %+v, want main at %s", branches, sha)
	}
	if i >= 0 && branches[i].Message == "" {
		t.Errorf("got branch main %+v with an empty message, want its head commit message", branches[i])
	}

	_, err = c.GetRepo(t.Context(), repo.FullName+"-missing")
	if !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("got %v for a missing repository, want ErrNotFound", err)
	}
}

func TestGiteaHookLifecycle(t *testing.T) {
	_, c, repo, _ := realGitea(t)
	opts := forge.HookOptions{
		URL: "http://127.0.0.1:9/ci/hooks", ContentType: "json", Secret: "lifecycle-secret",
		Events: forge.HookEvents, BranchFilter: "*", Active: true,
	}

	created, err := c.CreateHook(t.Context(), repo.FullName, opts)
	if err != nil {
		t.Fatal(err)
	}
	hooks, err := c.ListHooks(t.Context(), repo.FullName)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(hooks, func(h forge.Hook) bool { return h.ID == created.ID })
	if i < 0 {
		t.Fatalf("got hooks %+v, want hook %d", hooks, created.ID)
	}
	h := hooks[i]
	if h.Config.URL != opts.URL || h.Config.ContentType != "json" || !h.Active || h.Type != "gitea" {
		t.Errorf("got hook %+v, want an active gitea json hook to %s", h, opts.URL)
	}
	for _, e := range forge.HookEvents {
		if !slices.Contains(h.Events, e) {
			t.Errorf("got events %v, want %s among them", h.Events, e)
		}
	}

	// A full edit keeps the events; deactivating must not reset them.
	opts.Active = false
	edited, err := c.EditHook(t.Context(), repo.FullName, created.ID, opts)
	if err != nil {
		t.Fatal(err)
	}
	if edited.Active || !slices.Contains(edited.Events, "pull_request") || !slices.Contains(edited.Events, "delete") {
		t.Errorf("got edited hook %+v, want inactive with every event kept", edited)
	}

	if err := c.TestHook(t.Context(), repo.FullName, created.ID); err != nil {
		t.Errorf("test delivery: %v", err)
	}
	if err := c.DeleteHook(t.Context(), repo.FullName, created.ID); err != nil {
		t.Fatal(err)
	}
	err = c.DeleteHook(t.Context(), repo.FullName, created.ID)
	if !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("got %v deleting the hook twice, want ErrNotFound", err)
	}
}

func TestGiteaOrgHookLifecycle(t *testing.T) {
	inst, c, _, _ := realGitea(t)
	org := "org-" + randomSuffix(t)
	if err := inst.Do(t.Context(), http.MethodPost, "/orgs", map[string]any{"username": org}, nil); err != nil {
		t.Fatal(err)
	}
	opts := forge.HookOptions{URL: "http://127.0.0.1:9/hooks", ContentType: "json", Secret: "org-secret", Events: forge.HookEvents, BranchFilter: "*", Active: true}

	created, err := c.CreateOrgHook(t.Context(), org, opts)
	if err != nil {
		t.Fatal(err)
	}
	hooks, err := c.ListOrgHooks(t.Context(), org)
	if err != nil {
		t.Fatal(err)
	}
	if len(hooks) != 1 || hooks[0].ID != created.ID || hooks[0].Config.URL != opts.URL {
		t.Errorf("got organisation hooks %+v, want hook %d to %s", hooks, created.ID, opts.URL)
	}
	if _, err := c.EditOrgHook(t.Context(), org, created.ID, opts); err != nil {
		t.Errorf("edit organisation hook: %v", err)
	}
	if err := c.DeleteOrgHook(t.Context(), org, created.ID); err != nil {
		t.Fatal(err)
	}
	hooks, err = c.ListOrgHooks(t.Context(), org)
	if err != nil {
		t.Fatal(err)
	}
	if len(hooks) != 0 {
		t.Errorf("got %d organisation hooks after delete, want 0", len(hooks))
	}
}
