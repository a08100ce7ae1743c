package register

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/octavo-ci/octavo/plugin/config"
	"github.com/octavo-ci/octavo/plugin/forge"
)

// registrar does the work of one `octavo register` call.
type registrar struct {
	cfg       *config.Config
	client    *forge.Client
	out       io.Writer
	hookURL   string // PUBLIC_URL + "hooks": how our hook is recognised
	shownURL  string // hookURL with any password masked, for output
	wait      time.Duration
	pollEvery time.Duration

	// deliveries is octavo serve's database, opened on first use.
	// deliveriesErr is the reason it could not be opened.
	deliveries    *deliveryLog
	deliveriesErr error
}

// hookTarget is a repository or an organisation whose hooks we manage.
type hookTarget struct {
	label    string // "repository alice/demo" or "organisation team"
	repo     string // canonical OWNER/NAME; "" for an organisation
	list     func(context.Context) ([]forge.Hook, error)
	create   func(context.Context, forge.HookOptions) (*forge.Hook, error)
	remove   func(context.Context, int64) error
	testHook func(context.Context, int64) error // nil: no test delivery is possible
	// noTest says why testHook is nil ("not available for …"), and
	// pushHint what to push instead.
	noTest   string
	pushHint string
}

func (r *registrar) target(ctx context.Context, opts options) (*hookTarget, error) {
	if opts.org != "" {
		org := opts.org
		return &hookTarget{
			label: "organisation " + org,
			list:  func(ctx context.Context) ([]forge.Hook, error) { return r.client.ListOrgHooks(ctx, org) },
			create: func(ctx context.Context, o forge.HookOptions) (*forge.Hook, error) {
				return r.client.CreateOrgHook(ctx, org, o)
			},
			remove:   func(ctx context.Context, id int64) error { return r.client.DeleteOrgHook(ctx, org, id) },
			noTest:   "not available for organisation hooks",
			pushHint: "push to a repository of the organisation",
		}, nil
	}

	// The forge's spelling of the name is what deliveries carry, and a
	// missing repository or token problem shows up here with a clear error.
	repo, err := r.client.GetRepo(ctx, opts.repo)
	if err != nil {
		return nil, fmt.Errorf("look up repository %s on %s: %w", opts.repo, r.cfg.ForgeURL.Redacted(), err)
	}
	name := repo.FullName
	t := &hookTarget{
		label: "repository " + name,
		repo:  name,
		list:  func(ctx context.Context) ([]forge.Hook, error) { return r.client.ListHooks(ctx, name) },
		create: func(ctx context.Context, o forge.HookOptions) (*forge.Hook, error) {
			return r.client.CreateHook(ctx, name, o)
		},
		remove:   func(ctx context.Context, id int64) error { return r.client.DeleteHook(ctx, name, id) },
		testHook: func(ctx context.Context, id int64) error { return r.client.TestHook(ctx, name, id) },
	}
	if repo.Empty {
		// Gitea 1.26 responds 404 "repository is empty" to a test delivery
		// request, because a test push needs a commit.
		t.testHook = nil
		t.noTest = "not available for an empty repository"
		t.pushHint = "push a commit"
	}
	return t, nil
}

// desired is the full state our hook must have.
func (r *registrar) desired() forge.HookOptions {
	return forge.HookOptions{
		URL:          r.hookURL,
		ContentType:  "json",
		Secret:       forge.Secret(r.cfg.WebhookSecret),
		Events:       slices.Clone(forge.HookEvents),
		BranchFilter: "*",
		Active:       true,
	}
}

// run registers or removes the hook and returns the exit code.
func (r *registrar) run(ctx context.Context, opts options) (int, error) {
	t, err := r.target(ctx, opts)
	if err != nil {
		return exitFailed, err
	}
	defer r.closeDeliveries()

	hooks, err := t.list(ctx)
	if err != nil {
		return exitFailed, fmt.Errorf("list hooks of %s: %w", t.label, err)
	}
	ours := r.ours(hooks)

	if opts.remove {
		return r.removeAll(ctx, t, ours)
	}

	// Copies of our hook (from an older octavo, or a hand-made one) would
	// deliver every event twice; keep the first and delete the rest.
	for _, h := range ours[min(1, len(ours)):] {
		if err := t.remove(ctx, h.ID); err != nil {
			return exitFailed, fmt.Errorf("delete duplicate hook %d of %s: %w", h.ID, t.label, err)
		}
		fmt.Fprintf(r.out, "removed duplicate hook %d on %s (%s)\n", h.ID, t.label, r.shownURL)
	}

	want := r.desired()
	if len(ours) == 0 {
		h, err := t.create(ctx, want)
		if err != nil {
			return exitFailed, fmt.Errorf("create hook on %s: %w", t.label, err)
		}
		r.printHook("created", h, t.label, want)
		return r.testDelivery(ctx, t, h.ID)
	}

	old := ours[0]
	if !sameVisibleState(old, want, r.client.Kind()) {
		return r.replace(ctx, t, old, want, "its settings differ")
	}

	// The forge never returns a hook's secret, so only a delivery signed
	// with the configured secret and accepted by octavo serve proves the
	// hook unchanged. Without that proof the hook is replaced.
	check, err := r.openDeliveries(ctx, t)
	if err != nil {
		fmt.Fprintf(r.out, "cannot check the secret of hook %d: %v\n", old.ID, err)
		return r.replace(ctx, t, old, want, "its secret cannot be checked")
	}
	arrived, err := r.sendTest(ctx, t, old.ID, check)
	if err != nil {
		return exitFailed, err
	}
	if arrived {
		r.printHook("unchanged", &old, t.label, want)
		fmt.Fprintln(r.out, "test delivery: arrived; the hook carries the configured secret")
		return exitOK, nil
	}
	fmt.Fprintf(r.out, "test delivery through hook %d: none arrived within %v\n", old.ID, r.wait)
	return r.replace(ctx, t, old, want, "no test delivery signed with the configured secret arrived")
}

// replace creates a new hook with the desired state and then deletes old.
//
// NOTE: the hook is never edited in place. Gitea 1.26/1.27 and Forgejo 11
// ignore a secret sent in PATCH, and they reset the events to push only when
// a PATCH leaves them out. A re-created hook is the only way to be sure it
// carries the configured secret and the full event list. Creating before
// deleting means a push in between is delivered twice (and the second run
// replaces the first) rather than lost. The hook id changes, and the
// forge's delivery history of the old hook goes with it.
func (r *registrar) replace(ctx context.Context, t *hookTarget, old forge.Hook, want forge.HookOptions, why string) (int, error) {
	h, err := t.create(ctx, want)
	if err != nil {
		return exitFailed, fmt.Errorf("create replacement for hook %d on %s: %w", old.ID, t.label, err)
	}
	if err := t.remove(ctx, old.ID); err != nil {
		return exitFailed, fmt.Errorf("delete hook %d on %s after creating hook %d: %w (delete it by hand)", old.ID, t.label, h.ID, err)
	}
	r.printHook("updated", h, t.label, want)
	fmt.Fprintf(r.out, "  replaces hook %d, because %s (a forge cannot change a hook's secret in place)\n", old.ID, why)
	return r.testDelivery(ctx, t, h.ID)
}

func (r *registrar) removeAll(ctx context.Context, t *hookTarget, ours []forge.Hook) (int, error) {
	if len(ours) == 0 {
		fmt.Fprintf(r.out, "unchanged: no hook with URL %s on %s, nothing removed\n", r.shownURL, t.label)
		return exitOK, nil
	}
	for _, h := range ours {
		if err := t.remove(ctx, h.ID); err != nil {
			return exitFailed, fmt.Errorf("delete hook %d of %s: %w", h.ID, t.label, err)
		}
		fmt.Fprintf(r.out, "removed hook %d on %s (%s)\n", h.ID, t.label, r.shownURL)
	}
	return exitOK, nil
}

// ours returns the hooks whose URL is our hook URL, ignoring a trailing
// slash; every other hook is left alone.
func (r *registrar) ours(hooks []forge.Hook) []forge.Hook {
	want := strings.TrimSuffix(r.hookURL, "/")
	var out []forge.Hook
	for _, h := range hooks {
		if strings.TrimSuffix(h.Config.URL, "/") == want {
			out = append(out, h)
		}
	}
	return out
}

// sameVisibleState reports whether h already has everything of want that
// the forge shows: type, active flag, content type, all branches and
// exactly our events (the forge lists pull_request_* sub-events beside
// pull_request).
func sameVisibleState(h forge.Hook, want forge.HookOptions, kind string) bool {
	if h.Type != kind && h.Type != forge.KindGitea {
		return false
	}
	if !h.Active || h.Config.ContentType != want.ContentType {
		return false
	}
	if h.BranchFilter != "" && h.BranchFilter != "*" {
		return false
	}
	for _, e := range want.Events {
		if !slices.Contains(h.Events, e) {
			return false
		}
	}
	for _, e := range h.Events {
		if !slices.Contains(want.Events, e) && !strings.HasPrefix(e, "pull_request_") {
			return false
		}
	}
	return true
}

// printHook reports what was done, never the secret.
func (r *registrar) printHook(action string, h *forge.Hook, label string, want forge.HookOptions) {
	fmt.Fprintf(r.out, "%s: hook %d on %s\n", action, h.ID, label)
	fmt.Fprintf(r.out, "  url:          %s\n", r.shownURL)
	fmt.Fprintf(r.out, "  events:       %s\n", strings.Join(want.Events, ", "))
	fmt.Fprintf(r.out, "  content type: %s, all branches, active\n", want.ContentType)
	fmt.Fprintln(r.out, "  secret:       the configured webhook secret (not shown)")
}
