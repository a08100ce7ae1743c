package forge

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
)

// pageSize is the page size for list calls: the maximum both forges allow
// (Gitea 1.26 and Forgejo 11 default to 30 and cap at 50).
const pageSize = 50

// maxPages bounds a list walk, so a forge that keeps returning full pages
// cannot keep the client looping: 200 pages of 50 is 10000 items.
const maxPages = 200

// GetRepo returns the repository repo ("OWNER/NAME"). A missing repository,
// or one the token may not see, gives an error matching [ErrNotFound].
func (c *Client) GetRepo(ctx context.Context, repo string) (*Repository, error) {
	base, err := repoPath(repo)
	if err != nil {
		return nil, err
	}

	var rj repositoryJSON
	if _, err := c.do(ctx, "GET", base[:len(base)-1], nil, &rj); err != nil {
		return nil, err
	}
	return toRepository(rj), nil
}

func toRepository(rj repositoryJSON) *Repository {
	r := &Repository{
		ID:            rj.ID,
		FullName:      rj.FullName,
		Owner:         rj.Owner.Login,
		Name:          rj.Name,
		DefaultBranch: rj.DefaultBranch,
		CloneURL:      rj.CloneURL,
		HTMLURL:       rj.HTMLURL,
		ObjectFormat:  rj.ObjectFormat,
		Empty:         rj.Empty,
		Archived:      rj.Archived,
	}
	switch {
	case rj.Private:
		r.Visibility = VisibilityPrivate
	case rj.Internal:
		r.Visibility = VisibilityInternal
	default:
		r.Visibility = VisibilityPublic
	}
	if r.ObjectFormat == "" {
		// Forges before SHA-256 support (Gitea < 1.22) leave the field out.
		r.ObjectFormat = "sha1"
	}
	return r
}

// ListBranches returns every branch of repo with its head commit, walking
// all pages (at most 10000 branches; more gives an error).
func (c *Client) ListBranches(ctx context.Context, repo string) ([]Branch, error) {
	base, err := repoPath(repo)
	if err != nil {
		return nil, err
	}

	raw, err := listAll[branchJSON](ctx, c, base+"branches")
	if err != nil {
		return nil, err
	}
	branches := make([]Branch, 0, len(raw))
	for _, b := range raw {
		branches = append(branches, Branch{Name: b.Name, SHA: b.Commit.ID, Message: b.Commit.Message})
	}
	return branches, nil
}

// listAll walks the pages of a list endpoint. It always sends page and
// limit: Forgejo 11 ignores limit when page is missing. It stops at the
// first page shorter than the limit, or once X-Total-Count items are in.
func listAll[T any](ctx context.Context, c *Client, path string) ([]T, error) {
	var all []T
	for page := 1; page <= maxPages; page++ {
		var items []T
		header, err := c.do(ctx, "GET", path+"?limit="+strconv.Itoa(pageSize)+"&page="+strconv.Itoa(page), nil, &items)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)

		if len(items) < pageSize || totalReached(header, len(all)) {
			return all, nil
		}
	}
	return nil, &Error{Method: "GET", Path: "/api/v1/" + path, Err: fmt.Errorf("more than %d pages of %d items", maxPages, pageSize)}
}

// totalReached reports whether the X-Total-Count header says that n items
// are all there is.
func totalReached(h http.Header, n int) bool {
	total, err := strconv.Atoi(h.Get("X-Total-Count"))
	return err == nil && n >= total
}
