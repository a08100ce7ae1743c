package queue

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/plugin/webhook"
)

// maxCatchUpPerRepo bounds the runs catch-up queues for one repository,
// so a repository with hundreds of stale branches cannot flood the queue.
const maxCatchUpPerRepo = 20

// Branch is a branch head as the forge reports it.
type Branch struct {
	Name    string
	SHA     string
	Message string // head commit message, checked for a skip ci marker
}

// RepoInfo describes a repository that catch-up checks without having
// received a delivery from it.
type RepoInfo struct {
	Owner, Name, FullName string
	CloneURL, HTMLURL     string
	DefaultBranch         string
	Private               bool
}

// Forge is the part of the forge API catch-up uses.
type Forge interface {
	ListBranches(ctx context.Context, fullName string) ([]Branch, error)
	GetRepo(ctx context.Context, fullName string) (RepoInfo, error)
}

// CatchUp queues a run for every branch head that was pushed while octavo
// was down. It checks each repository that has runs or is listed in extra
// ("owner/name"). A branch whose head differs from the sha of its newest
// run, or that has no run, gets one, at most maxCatchUpPerRepo per
// repository. A forge error skips that repository, and all such errors are
// returned joined after every repository was tried.
func (q *Queue) CatchUp(ctx context.Context, f Forge, extra []string) error {
	repos, err := store.ReposWithRuns(ctx, q.db)
	if err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	seen := map[string]bool{}
	for _, r := range repos {
		seen[r.FullName] = true
	}
	for _, name := range extra {
		if seen[name] {
			continue
		}
		seen[name] = true
		info, err := f.GetRepo(ctx, name)
		if err != nil {
			q.log.ErrorContext(ctx, "catch up: read repository", "repo", name, "err", err)
			continue
		}
		repos = append(repos, store.Repo{
			FullName: info.FullName, Owner: info.Owner, Name: info.Name, Private: info.Private,
			DefaultBranch: info.DefaultBranch, CloneURL: info.CloneURL, HTMLURL: info.HTMLURL,
		})
	}

	var errs []error
	for i := range repos {
		if err := q.catchUpRepo(ctx, f, &repos[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (q *Queue) catchUpRepo(ctx context.Context, f Forge, repo *store.Repo) error {
	branches, err := f.ListBranches(ctx, repo.FullName)
	if err != nil {
		return fmt.Errorf("catch up %s: list branches: %w", repo.FullName, err)
	}

	queued := 0
	for _, b := range branches {
		if queued >= maxCatchUpPerRepo {
			q.log.WarnContext(ctx, "catch up: run limit reached", "repo", repo.FullName, "limit", maxCatchUpPerRepo)
			break
		}
		ref := "refs/heads/" + b.Name
		if repo.ID != 0 {
			newest, err := store.NewestRunSHA(ctx, q.db, repo.ID, ref)
			if err != nil {
				return fmt.Errorf("catch up %s: %w", repo.FullName, err)
			}
			if newest == b.SHA {
				continue
			}
		}
		// A head whose push was skipped for its marker has no run either, so
		// without this check every restart would build it.
		if webhook.HasSkipCIMarker(b.Message) {
			q.log.DebugContext(ctx, "catch up: head skipped for its skip ci marker", "repo", repo.FullName, "branch", b.Name, "sha", b.SHA)
			continue
		}

		d := &webhook.Delivery{
			ID:     fmt.Sprintf("catch-up:%s:%s:%s", repo.FullName, ref, b.SHA),
			Event:  "catch-up",
			Action: webhook.ActionRun,
			Repo: webhook.Repo{
				Owner: repo.Owner, Name: repo.Name, FullName: repo.FullName, CloneURL: repo.CloneURL,
				HTMLURL: repo.HTMLURL, DefaultBranch: repo.DefaultBranch, Private: repo.Private,
			},
			Ref: ref,
			Push: &webhook.Push{
				SHA: b.SHA, Ref: ref, Branch: b.Name, Repo: repo.FullName,
				CloneURL: repo.CloneURL, Pusher: "octavo catch-up", Message: b.Message,
			},
		}
		res, err := q.Intake(ctx, d)
		if err != nil {
			return fmt.Errorf("catch up %s %s: %w", repo.FullName, b.Name, err)
		}
		if !res.Duplicate {
			queued++
			q.log.InfoContext(ctx, "catch up: run queued", "repo", repo.FullName, "branch", b.Name, "sha", b.SHA, "run_id", res.RunID)
		}
		if repo.ID == 0 {
			if err := q.db.WithContext(ctx).Where("full_name = ?", repo.FullName).Take(repo).Error; err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
				return fmt.Errorf("catch up %s: %w", repo.FullName, err)
			}
		}
	}
	return nil
}
