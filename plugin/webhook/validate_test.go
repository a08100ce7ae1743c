package webhook

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// TestParseRejectsUnsafeValues checks the push fields that later become
// paths, git arguments and URLs. Parse once accepted a full_name of
// "../../evil", which put the mirror folder outside the data folder. It
// also accepted refs with ".." or control characters, an after of
// "--output=x" that reached git as an option, and clone URLs that were
// file:// URLs, bare paths or options.
func TestParseRejectsUnsafeValues(t *testing.T) {
	sha := strings.Repeat("b", 40)
	push := func(edit func(body, repo map[string]any)) []byte {
		repo := map[string]any{"name": "app", "full_name": "acme/app", "owner": map[string]any{"login": "acme"}, "clone_url": "https://git.example.com/acme/app.git"}
		body := map[string]any{
			"ref": "refs/heads/main", "before": strings.Repeat("a", 40), "after": sha,
			"head_commit": map[string]any{"id": sha, "message": "feat"},
			"repository":  repo, "pusher": map[string]any{"login": "acme"},
		}
		edit(body, repo)
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name  string
		edit  func(body, repo map[string]any)
		valid bool
	}{
		{"ordinary push is accepted", func(body, repo map[string]any) {}, true},
		{"unicode branch is accepted", func(body, repo map[string]any) { body["ref"] = "refs/heads/féature/ü" }, true},
		{"sha256 commit is accepted", func(body, repo map[string]any) {
			long := strings.Repeat("c", 64)
			body["after"] = long
			body["head_commit"] = map[string]any{"id": long}
		}, true},
		{"dotted repository name is accepted", func(body, repo map[string]any) {
			repo["name"], repo["full_name"] = "app.go-v2_x", "acme/app.go-v2_x"
		}, true},
		{"full name with traversal is rejected", func(body, repo map[string]any) {
			repo["full_name"], repo["name"], repo["owner"] = "../../evil", "", map[string]any{}
		}, false},
		{"name of two dots is rejected", func(body, repo map[string]any) { repo["full_name"], repo["name"] = "acme/..", ".." }, false},
		{"full name with three parts is rejected", func(body, repo map[string]any) {
			repo["full_name"], repo["name"], repo["owner"] = "a/b/c", "", map[string]any{}
		}, false},
		{"full name with markup is rejected", func(body, repo map[string]any) { repo["full_name"], repo["name"] = "acme/<b>x</b>", "<b>x</b>" }, false},
		{"full name that differs from owner and name is rejected", func(body, repo map[string]any) { repo["full_name"] = "other/app" }, false},
		{"ref with dot dot is rejected", func(body, repo map[string]any) { body["ref"] = "refs/heads/../../x" }, false},
		{"ref with a control character is rejected", func(body, repo map[string]any) { body["ref"] = "refs/heads/a\x01b" }, false},
		{"ref with a space is rejected", func(body, repo map[string]any) { body["ref"] = "refs/heads/a b" }, false},
		{"ref ending in a slash is rejected", func(body, repo map[string]any) { body["ref"] = "refs/heads/a/" }, false},
		{"after that is an option is rejected", func(body, repo map[string]any) { body["after"] = "--output=x"; delete(body, "head_commit") }, false},
		{"head commit that is not hex is rejected", func(body, repo map[string]any) { body["head_commit"] = map[string]any{"id": "HEAD~1"} }, false},
		{"file clone URL is rejected", func(body, repo map[string]any) { repo["clone_url"] = "file:///srv/git/secret.git" }, false},
		{"path clone URL is rejected", func(body, repo map[string]any) { repo["clone_url"] = "/srv/git/secret.git" }, false},
		{"option clone URL is rejected", func(body, repo map[string]any) { repo["clone_url"] = "--upload-pack=touch x" }, false},
		{"ext clone URL is rejected", func(body, repo map[string]any) { repo["clone_url"] = "ext::sh -c touch% x" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			h.Set("X-Gitea-Event", "push")
			h.Set("X-Gitea-Delivery", "d-1")
			d, err := Parse(h, push(tt.edit))
			if tt.valid {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if d.Action != ActionRun {
					t.Errorf("action = %q (%s), want %q", d.Action, d.Reason, ActionRun)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("Parse error = %v, want %v", err, ErrMalformed)
			}
		})
	}
}
