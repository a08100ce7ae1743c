package forge

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Hook events octavo registers. On both forges "pull_request" switches on
// every pull_request_* event too.
var HookEvents = []string{"push", "create", "delete", "pull_request"}

// ListHooks returns every webhook of repo ("OWNER/NAME").
func (c *Client) ListHooks(ctx context.Context, repo string) ([]Hook, error) {
	base, err := repoPath(repo)
	if err != nil {
		return nil, err
	}
	return listAll[Hook](ctx, c, base+"hooks")
}

// CreateHook creates a webhook in repo and returns it.
func (c *Client) CreateHook(ctx context.Context, repo string, opts HookOptions) (*Hook, error) {
	base, err := repoPath(repo)
	if err != nil {
		return nil, err
	}
	return c.createHook(ctx, base+"hooks", opts)
}

// EditHook replaces the events, branch filter, URL, content type and active
// flag of hook id in repo. The forge keeps the old secret whatever
// opts.Secret contains.
func (c *Client) EditHook(ctx context.Context, repo string, id int64, opts HookOptions) (*Hook, error) {
	base, err := repoPath(repo)
	if err != nil {
		return nil, err
	}
	return c.editHook(ctx, base+"hooks/"+strconv.FormatInt(id, 10), opts)
}

// DeleteHook deletes hook id of repo.
func (c *Client) DeleteHook(ctx context.Context, repo string, id int64) error {
	base, err := repoPath(repo)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, "DELETE", base+"hooks/"+strconv.FormatInt(id, 10), nil, nil)
	return err
}

// TestHook requests a test delivery from the forge through hook id of repo:
// a push event for the head of the default branch with before equal to
// after. The forge responds 204 before it delivers, so success here proves
// nothing about whether the delivery arrived. Organisation hooks have no
// such call.
func (c *Client) TestHook(ctx context.Context, repo string, id int64) error {
	base, err := repoPath(repo)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, "POST", base+"hooks/"+strconv.FormatInt(id, 10)+"/tests", nil, nil)
	return err
}

// ListOrgHooks returns every webhook of organisation org.
func (c *Client) ListOrgHooks(ctx context.Context, org string) ([]Hook, error) {
	base, err := orgPath(org)
	if err != nil {
		return nil, err
	}
	return listAll[Hook](ctx, c, base+"hooks")
}

// CreateOrgHook creates a webhook of organisation org, which fires for
// every repository the organisation owns.
func (c *Client) CreateOrgHook(ctx context.Context, org string, opts HookOptions) (*Hook, error) {
	base, err := orgPath(org)
	if err != nil {
		return nil, err
	}
	return c.createHook(ctx, base+"hooks", opts)
}

// EditOrgHook is [Client.EditHook] for an organisation hook.
func (c *Client) EditOrgHook(ctx context.Context, org string, id int64, opts HookOptions) (*Hook, error) {
	base, err := orgPath(org)
	if err != nil {
		return nil, err
	}
	return c.editHook(ctx, base+"hooks/"+strconv.FormatInt(id, 10), opts)
}

// DeleteOrgHook deletes hook id of organisation org.
func (c *Client) DeleteOrgHook(ctx context.Context, org string, id int64) error {
	base, err := orgPath(org)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, "DELETE", base+"hooks/"+strconv.FormatInt(id, 10), nil, nil)
	return err
}

func (c *Client) createHook(ctx context.Context, path string, opts HookOptions) (*Hook, error) {
	body := toHookRequest(opts)
	// Gitea refuses type "forgejo"; Forgejo takes both and sends the same
	// headers and body for either.
	body.Type = c.kind

	var h Hook
	if _, err := c.doHiding(ctx, "POST", path, body, &h, []Secret{opts.Secret}); err != nil {
		return nil, err
	}
	return &h, nil
}

func (c *Client) editHook(ctx context.Context, path string, opts HookOptions) (*Hook, error) {
	var h Hook
	if _, err := c.doHiding(ctx, "PATCH", path, toHookRequest(opts), &h, []Secret{opts.Secret}); err != nil {
		return nil, err
	}
	return &h, nil
}

func toHookRequest(opts HookOptions) hookRequest {
	events := opts.Events
	if events == nil {
		events = []string{}
	}
	return hookRequest{
		Active:       opts.Active,
		Events:       events,
		BranchFilter: opts.BranchFilter,
		Config: hookRequestConfig{
			URL:         opts.URL,
			ContentType: opts.ContentType,
			Secret:      opts.Secret,
		},
	}
}

// orgPath returns "orgs/ORG/" escaped, or an error for an empty or
// slash-containing name.
func orgPath(org string) (string, error) {
	if org == "" || strings.Contains(org, "/") {
		return "", fmt.Errorf("invalid organisation name %q: want a name without slashes", org)
	}
	return "orgs/" + url.PathEscape(org) + "/", nil
}
