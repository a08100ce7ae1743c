package forge

import (
	"context"
	"fmt"
	"net/url"
)

// CreateStatus posts a commit status for sha in repo ("OWNER/NAME"). It
// rejects a state outside the five in [StatusState] with [ErrInvalidState]
// before sending anything, because the forges store any string. Gitea
// responds 500 (not 404) for a commit it does not have.
func (c *Client) CreateStatus(ctx context.Context, repo, sha string, opts StatusOptions) (*Status, error) {
	if !opts.State.Valid() {
		return nil, fmt.Errorf("%w: %q", ErrInvalidState, opts.State)
	}
	if sha == "" {
		return nil, fmt.Errorf("create commit status in %s: empty commit sha", repo)
	}
	base, err := repoPath(repo)
	if err != nil {
		return nil, err
	}

	var st Status
	if _, err := c.do(ctx, "POST", base+"statuses/"+url.PathEscape(sha), opts, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// GetCombinedStatus returns the newest status of each context for ref (a
// sha, branch or tag) in repo. It requests one page of 50, the forges'
// maximum; a commit with more contexts than that is cut off. On Forgejo an
// unknown ref gets the response of a commit without statuses, not 404.
func (c *Client) GetCombinedStatus(ctx context.Context, repo, ref string) (*CombinedStatus, error) {
	base, err := repoPath(repo)
	if err != nil {
		return nil, err
	}

	var cs CombinedStatus
	if _, err := c.do(ctx, "GET", base+"commits/"+url.PathEscape(ref)+"/status?limit=50&page=1", nil, &cs); err != nil {
		return nil, err
	}
	return &cs, nil
}
