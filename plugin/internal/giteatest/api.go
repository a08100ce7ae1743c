package giteatest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// APIError is returned for an API response outside 2xx.
type APIError struct {
	Method string
	Path   string
	Status int
	Body   string // truncated
}

func (e *APIError) Error() string {
	return fmt.Sprintf("gitea %s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// Do sends a request to the API path (below /api/v1) as the admin, with
// body encoded as JSON when not nil, and decodes a 2xx response into out
// when out is not nil. A non-2xx response is an [*APIError].
func (i *Instance) Do(ctx context.Context, method, path string, body, out any) error {
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode gitea %s %s: %w", method, path, err)
		}
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, i.URL+"/api/v1"+path, reader)
	if err != nil {
		return fmt.Errorf("build gitea %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "token "+i.Token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := i.client.Do(req)
	if err != nil {
		return fmt.Errorf("gitea %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("read gitea %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &APIError{Method: method, Path: path, Status: resp.StatusCode, Body: tail(raw, 500)}
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode gitea %s %s: %w", method, path, err)
		}
	}
	return nil
}

// Repo is the part of Gitea's repository object the tests use.
type Repo struct {
	ID       int64  `json:"id"`
	FullName string `json:"full_name"`
	CloneURL string `json:"clone_url"`
	HTMLURL  string `json:"html_url"`
	Private  bool   `json:"private"`
}

// CreateRepo creates a public repository name owned by the admin, with one
// commit (a README) on main. An existing repository of that name is
// returned as it is.
func (i *Instance) CreateRepo(ctx context.Context, name string) (Repo, error) {
	var repo Repo
	req := map[string]any{"name": name, "auto_init": true, "default_branch": "main", "private": false}
	err := i.Do(ctx, http.MethodPost, "/user/repos", req, &repo)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict {
		err = i.Do(ctx, http.MethodGet, "/repos/"+i.Admin+"/"+url.PathEscape(name), nil, &repo)
	}
	if err != nil {
		return Repo{}, fmt.Errorf("create repo %s: %w", name, err)
	}
	return repo, nil
}

// Status is one commit status. Gitea returns its state as "status".
type Status struct {
	ID          int64  `json:"id"`
	State       string `json:"status"`
	Context     string `json:"context"`
	Description string `json:"description"`
	TargetURL   string `json:"target_url"`
}

// CombinedStatus is Gitea's combined status of a commit. Statuses holds
// the newest status per context.
type CombinedStatus struct {
	State      string   `json:"state"`
	SHA        string   `json:"sha"`
	TotalCount int      `json:"total_count"`
	Statuses   []Status `json:"statuses"`
}

// Context returns the newest status with context name and whether there
// is one.
func (c CombinedStatus) Context(name string) (Status, bool) {
	for _, s := range c.Statuses {
		if s.Context == name {
			return s, true
		}
	}
	return Status{}, false
}

// CombinedStatus returns the combined status of ref (a sha, branch or tag)
// in repo ("owner/name").
func (i *Instance) CombinedStatus(ctx context.Context, repo, ref string) (CombinedStatus, error) {
	var cs CombinedStatus
	err := i.Do(ctx, http.MethodGet, "/repos/"+repo+"/commits/"+url.PathEscape(ref)+"/status", nil, &cs)
	return cs, err
}

// Statuses returns every status ever posted for sha in repo, newest first.
func (i *Instance) Statuses(ctx context.Context, repo, sha string) ([]Status, error) {
	var list []Status
	err := i.Do(ctx, http.MethodGet, "/repos/"+repo+"/statuses/"+url.PathEscape(sha)+"?limit=50", nil, &list)
	return list, err
}

// Hook is a repository webhook.
type Hook struct {
	ID     int64             `json:"id"`
	Type   string            `json:"type"`
	Active bool              `json:"active"`
	Events []string          `json:"events"`
	Config map[string]string `json:"config"`
}

// Hooks lists the webhooks of repo.
func (i *Instance) Hooks(ctx context.Context, repo string) ([]Hook, error) {
	var hooks []Hook
	err := i.Do(ctx, http.MethodGet, "/repos/"+repo+"/hooks", nil, &hooks)
	return hooks, err
}

// CreateHook adds an active JSON webhook of type gitea to repo, sending
// events (push, create, delete and pull_request when empty) to target,
// signed with secret.
func (i *Instance) CreateHook(ctx context.Context, repo, target, secret string, events ...string) (Hook, error) {
	if len(events) == 0 {
		events = []string{"push", "create", "delete", "pull_request"}
	}
	req := map[string]any{
		"type":   "gitea",
		"active": true,
		"events": events,
		"config": map[string]string{"url": target, "content_type": "json", "secret": secret},
	}
	var hook Hook
	if err := i.Do(ctx, http.MethodPost, "/repos/"+repo+"/hooks", req, &hook); err != nil {
		return Hook{}, fmt.Errorf("create a webhook on %s: %w", repo, err)
	}
	return hook, nil
}

// Commit returns the sha of ref (branch, tag or sha) in repo.
func (i *Instance) Commit(ctx context.Context, repo, ref string) (string, error) {
	var c struct {
		SHA string `json:"sha"`
	}
	if err := i.Do(ctx, http.MethodGet, "/repos/"+repo+"/git/commits/"+url.PathEscape(ref), nil, &c); err != nil {
		return "", err
	}
	return c.SHA, nil
}

// CommitURL returns the web page of sha in repo.
func (i *Instance) CommitURL(repo, sha string) string {
	return i.URL + "/" + repo + "/commit/" + sha
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // since Go 1.24, Read never returns an error
	return hex.EncodeToString(b)
}
