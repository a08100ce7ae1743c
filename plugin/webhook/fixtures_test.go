package webhook

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixtureSecret signed every captured delivery in testdata (see each
// folder's README.md).
const fixtureSecret = "fixture-secret-7Hq2"

var forgeFolders = []string{"gitea-1.26", "gitea-1.27.3", "forgejo-11.0.1"}

type fixture struct {
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

func (f fixture) header() http.Header {
	h := http.Header{}
	for k, v := range f.Headers {
		h.Set(k, v)
	}
	return h
}

func loadFixture(t testing.TB, path string) fixture {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return f
}

func fixturePaths(t testing.TB) []string {
	t.Helper()
	var paths []string
	for _, dir := range forgeFolders {
		m, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(m) == 0 {
			t.Fatalf("no fixtures in testdata/%s", dir)
		}
		paths = append(paths, m...)
	}
	return paths
}

// wantAction is the action each captured case must produce, by file name.
var wantAction = map[string]struct {
	action Action
	ref    string
	tag    string
	branch string
}{
	"create-branch-slash-unicode.json":  {action: ActionIgnore, ref: "refs/heads/feature/café-über"},
	"create-pr-branch.json":             {action: ActionIgnore, ref: "refs/heads/topic/pr-demo"},
	"create-tag-annotated.json":         {action: ActionIgnore, ref: "refs/tags/v1.0.0"},
	"create-tag-lightweight.json":       {action: ActionIgnore, ref: "refs/tags/v1.0.1-light"},
	"delete-branch-deleted.json":        {action: ActionCancel, ref: "refs/heads/feature/café-über"},
	"delete-tag-deleted.json":           {action: ActionCancel, ref: "refs/tags/v1.0.1-light"},
	"pull_request-opened.json":          {action: ActionIgnore},
	"pull_request-synchronized.json":    {action: ActionIgnore},
	"push-branch-slash-unicode.json":    {action: ActionRun, ref: "refs/heads/feature/café-über", branch: "feature/café-über"},
	"push-force.json":                   {action: ActionRun, ref: "refs/heads/main", branch: "main"},
	"push-pr-branch.json":               {action: ActionRun, ref: "refs/heads/topic/pr-demo", branch: "topic/pr-demo"},
	"push-pr-synchronized.json":         {action: ActionRun, ref: "refs/heads/topic/pr-demo", branch: "topic/pr-demo"},
	"push-seven-commits.json":           {action: ActionRun, ref: "refs/heads/main", branch: "main"},
	"push-tag-annotated.json":           {action: ActionRun, ref: "refs/tags/v1.0.0", tag: "v1.0.0"},
	"push-tag-deleted.json":             {action: ActionCancel, ref: "refs/tags/v1.0.1-light"},
	"push-tag-lightweight.json":         {action: ActionRun, ref: "refs/tags/v1.0.1-light", tag: "v1.0.1-light"},
	"push-test-delivery.json":           {action: ActionIgnore, ref: "refs/heads/main"},
	"push-two-commits.json":             {action: ActionRun, ref: "refs/heads/main", branch: "main"},
	"push-test-delivery-no-secret.json": {action: ActionIgnore, ref: "refs/heads/main"},
}

func TestFixturesReplay(t *testing.T) {
	for _, path := range fixturePaths(t) {
		t.Run(path, func(t *testing.T) {
			f := loadFixture(t, path)
			h := f.header()
			name := filepath.Base(path)
			want, ok := wantAction[name]
			if !ok {
				t.Fatalf("no expectation for fixture %s", name)
			}

			signed, err := SignedBody(h, []byte(f.Body))
			if err != nil {
				t.Fatalf("SignedBody: %v", err)
			}
			err = Verify(h, []byte(fixtureSecret), signed)
			if name == "push-test-delivery-no-secret.json" {
				if !errors.Is(err, ErrMissingSignature) {
					t.Errorf("Verify of unsigned delivery = %v, want ErrMissingSignature", err)
				}
			} else if err != nil {
				t.Errorf("Verify = %v, want nil", err)
			}

			d, err := Parse(h, signed)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if d.Action != want.action {
				t.Errorf("action = %q (%s), want %q", d.Action, d.Reason, want.action)
			}
			if want.ref != "" && d.Ref != want.ref {
				t.Errorf("ref = %q, want %q", d.Ref, want.ref)
			}
			if d.ID == "" || d.ID != f.Headers["X-Gitea-Delivery"] {
				t.Errorf("delivery id = %q, want %q", d.ID, f.Headers["X-Gitea-Delivery"])
			}
			if d.Repo.FullName != "forgeadmin/hooks-demo" {
				t.Errorf("repo = %q, want forgeadmin/hooks-demo", d.Repo.FullName)
			}
			if d.Action != ActionRun {
				return
			}
			p := d.Push
			if p.Tag != want.tag || p.Branch != want.branch {
				t.Errorf("tag, branch = %q, %q, want %q, %q", p.Tag, p.Branch, want.tag, want.branch)
			}
			if len(p.SHA) != 40 || zeroSHA(p.SHA) {
				t.Errorf("sha = %q, want a commit id", p.SHA)
			}
			if p.CloneURL == "" || p.Repo != "forgeadmin/hooks-demo" || p.Pusher == "" {
				t.Errorf("push = %+v, want clone_url, repo and pusher set", p)
			}
		})
	}
}

// TestAnnotatedTagBuildsTheCommit checks that the run of an annotated tag
// gets the tagged commit, because the payload's after is the tag object.
func TestAnnotatedTagBuildsTheCommit(t *testing.T) {
	f := loadFixture(t, filepath.Join("testdata", "gitea-1.26", "push-tag-annotated.json"))
	var raw struct {
		After      string `json:"after"`
		HeadCommit struct {
			ID string `json:"id"`
		} `json:"head_commit"`
	}
	if err := json.Unmarshal([]byte(f.Body), &raw); err != nil {
		t.Fatal(err)
	}
	d, err := Parse(f.header(), []byte(f.Body))
	if err != nil {
		t.Fatal(err)
	}
	if d.Push.SHA != raw.HeadCommit.ID {
		t.Errorf("sha = %s, want head commit %s", d.Push.SHA, raw.HeadCommit.ID)
	}
	if d.Push.SHA == raw.After {
		t.Errorf("sha = tag object %s, want the commit", d.Push.SHA)
	}
}

func TestVerifySignatureHeaders(t *testing.T) {
	f := loadFixture(t, filepath.Join("testdata", "forgejo-11.0.1", "push-two-commits.json"))
	body := []byte(f.Body)
	good := Sign([]byte(fixtureSecret), body)

	tests := []struct {
		name    string
		headers map[string]string
		want    error
	}{
		{"no header is missing", nil, ErrMissingSignature},
		{"empty header is missing", map[string]string{"X-Gitea-Signature": ""}, ErrMissingSignature},
		{"empty hub prefix is missing", map[string]string{"X-Hub-Signature-256": "sha256="}, ErrMissingSignature},
		{"wrong digest is rejected", map[string]string{"X-Gitea-Signature": strings.Repeat("0", 64)}, ErrBadSignature},
		{"non-hex digest is rejected", map[string]string{"X-Gitea-Signature": "zz"}, ErrBadSignature},
		{"gitea header is accepted", map[string]string{"X-Gitea-Signature": good}, nil},
		{"forgejo header is accepted", map[string]string{"X-Forgejo-Signature": good}, nil},
		{"gogs header is accepted", map[string]string{"X-Gogs-Signature": good}, nil},
		{"hub header is accepted", map[string]string{"X-Hub-Signature-256": "sha256=" + good}, nil},
		{"wrong forgejo header wins over right gitea", map[string]string{"X-Forgejo-Signature": strings.Repeat("1", 64), "X-Gitea-Signature": good}, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			err := Verify(h, []byte(fixtureSecret), body)
			if tt.want == nil && err != nil {
				t.Errorf("Verify = %v, want nil", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}

	t.Run("wrong secret is rejected", func(t *testing.T) {
		err := Verify(f.header(), []byte("another-secret"), body)
		if !errors.Is(err, ErrBadSignature) {
			t.Errorf("Verify = %v, want ErrBadSignature", err)
		}
	})
}

func TestParseEdgeCases(t *testing.T) {
	pushBody := func(msg, ref, before, after string) string {
		b, _ := json.Marshal(map[string]any{
			"ref": ref, "before": before, "after": after, "compare_url": "",
			"head_commit": map[string]any{"id": after, "message": msg},
			"repository":  map[string]any{"name": "r", "full_name": "o/r", "owner": map[string]any{"login": "o"}, "clone_url": "http://127.0.0.1/o/r.git"},
			"pusher":      map[string]any{"login": "o"},
		})
		return string(b)
	}
	a, b := strings.Repeat("a", 40), strings.Repeat("b", 40)
	tests := []struct {
		name    string
		event   string
		body    string
		want    Action
		wantErr error
	}{
		{"skip ci marker ignores the push", "push", pushBody("fix typo [skip ci]", "refs/heads/main", a, b), ActionIgnore, nil},
		{"ci skip marker in any case ignores the push", "push", pushBody("x\n\n[CI SKIP]", "refs/heads/main", a, b), ActionIgnore, nil},
		{"ordinary push queues a run", "push", pushBody("feat", "refs/heads/main", a, b), ActionRun, nil},
		{"sha256 zero after cancels", "push", pushBody("", "refs/heads/main", a, strings.Repeat("0", 64)), ActionCancel, nil},
		{"status event is ignored", "status", `{}`, ActionIgnore, nil},
		{"invalid json is malformed", "push", `{"ref":`, "", ErrMalformed},
		{"short push ref is malformed", "push", pushBody("", "main", a, b), "", ErrMalformed},
		{"delete with unknown ref_type is malformed", "delete", `{"ref":"x","ref_type":"note","repository":{"name":"r","owner":{"login":"o"}}}`, "", ErrMalformed},
		{"push without repository is malformed", "push", `{"ref":"refs/heads/main","before":"` + a + `","after":"` + b + `"}`, "", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			h.Set("X-Gitea-Event", tt.event)
			h.Set("X-Gitea-Delivery", "d-1")
			d, err := Parse(h, []byte(tt.body))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if d.Action != tt.want {
				t.Errorf("action = %q (%s), want %q", d.Action, d.Reason, tt.want)
			}
		})
	}
}

func TestSignedBodyContentTypes(t *testing.T) {
	tests := []struct {
		name    string
		ct      string
		body    string
		want    string
		wantErr error
	}{
		{"json is signed as is", "application/json", `{"a":1}`, `{"a":1}`, nil},
		{"json with charset is signed as is", "application/json; charset=utf-8", `{}`, `{}`, nil},
		{"form signs its payload field", "application/x-www-form-urlencoded", "payload=%7B%22a%22%3A1%7D", `{"a":1}`, nil},
		{"form without payload is malformed", "application/x-www-form-urlencoded", "x=1", "", ErrMalformed},
		{"xml is unsupported", "application/xml", "<a/>", "", ErrUnsupportedContentType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			h.Set("Content-Type", tt.ct)
			got, err := SignedBody(h, []byte(tt.body))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("SignedBody error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Errorf("SignedBody = %q, %v, want %q", got, err, tt.want)
			}
		})
	}
}
