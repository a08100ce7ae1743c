package register

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/octavo-ci/octavo/plugin/store"
)

// deliveryLog reads the deliveries table that octavo serve writes: one row
// per webhook delivery whose signature it accepted, the forge's test
// delivery included.
type deliveryLog struct {
	st *store.Store
}

// openDeliveries opens octavo serve's database once per call of register.
// It does not create a SQLite file that does not exist yet: a missing file
// means octavo serve never ran with these settings.
func (r *registrar) openDeliveries(ctx context.Context, t *hookTarget) (*deliveryLog, error) {
	if t.testHook == nil {
		return nil, errors.New("test delivery " + t.noTest)
	}
	if r.wait == 0 {
		return nil, errors.New("--wait 0 skips the test delivery")
	}
	if r.deliveries != nil || r.deliveriesErr != nil {
		return r.deliveries, r.deliveriesErr
	}

	dsn := r.cfg.DSN()
	if path, ok := sqlitePath(dsn); ok {
		if _, err := os.Stat(path); err != nil {
			r.deliveriesErr = fmt.Errorf("no octavo database at %s (%w): start octavo serve with the same OCTAVO_DATA_DIR or OCTAVO_DATABASE first", path, err)
			return nil, r.deliveriesErr
		}
	}
	st, err := store.Open(ctx, store.Options{DSN: dsn})
	if err != nil {
		r.deliveriesErr = fmt.Errorf("open octavo's database to watch for the test delivery: %w", err)
		return nil, r.deliveriesErr
	}
	r.deliveries = &deliveryLog{st: st}
	return r.deliveries, nil
}

func (r *registrar) closeDeliveries() {
	if r.deliveries != nil {
		_ = r.deliveries.st.Close()
	}
}

// sqlitePath returns the file path of a SQLite DSN as store.Open reads it,
// and false for a PostgreSQL DSN or an in-memory database.
func sqlitePath(dsn string) (string, bool) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") || strings.Contains(dsn, "host=") {
		return "", false
	}
	path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if path == "" || path == ":memory:" {
		return "", false
	}
	return path, true
}

// lastID returns the id of the newest delivery, or 0 for none.
func (d *deliveryLog) lastID(ctx context.Context) (uint, error) {
	var last store.Delivery
	err := d.st.DB.WithContext(ctx).Order("id DESC").Limit(1).Find(&last).Error
	if err != nil {
		return 0, fmt.Errorf("read the newest delivery: %w", err)
	}
	return last.ID, nil
}

// waitNewer polls for a push delivery of repo with an id above after, for at
// most wait. It returns nil when none arrived in time.
func (d *deliveryLog) waitNewer(ctx context.Context, repo string, after uint, wait, every time.Duration) (*store.Delivery, error) {
	deadline := time.Now().Add(wait)
	for {
		var found []store.Delivery
		err := d.st.DB.WithContext(ctx).
			Where("id > ? AND event = ? AND LOWER(repo_full_name) = LOWER(?)", after, "push", repo).
			Order("id").Limit(1).Find(&found).Error
		if err != nil {
			return nil, fmt.Errorf("read deliveries of %s: %w", repo, err)
		}
		if len(found) == 1 {
			return &found[0], nil
		}
		if !time.Now().Before(deadline) {
			return nil, nil
		}

		timer := time.NewTimer(min(every, time.Until(deadline)))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
	}
}

// sendTest requests a test delivery through hook id and reports
// whether octavo serve recorded it within the wait.
func (r *registrar) sendTest(ctx context.Context, t *hookTarget, id int64, log *deliveryLog) (bool, error) {
	after, err := log.lastID(ctx)
	if err != nil {
		return false, err
	}
	if err := t.testHook(ctx, id); err != nil {
		return false, fmt.Errorf("request a test delivery through hook %d on %s: %w", id, t.label, err)
	}
	d, err := log.waitNewer(ctx, t.repo, after, r.wait, r.pollEvery)
	if err != nil {
		return false, err
	}
	return d != nil, nil
}

// testDelivery requests a test delivery through the hook just written and
// reports the result; see [Main] for the exit codes.
func (r *registrar) testDelivery(ctx context.Context, t *hookTarget, id int64) (int, error) {
	log, err := r.openDeliveries(ctx, t)
	switch {
	case t.testHook == nil:
		fmt.Fprintf(r.out, "test delivery: %s; %s and look for its run under %s\n", t.noTest, t.pushHint, r.cfg.PublicURL.Redacted())
		return exitOK, nil
	case r.wait == 0:
		fmt.Fprintln(r.out, "test delivery: skipped (--wait 0)")
		return exitOK, nil
	case err != nil:
		if testErr := t.testHook(ctx, id); testErr != nil {
			return exitFailed, fmt.Errorf("request a test delivery through hook %d on %s: %w", id, t.label, testErr)
		}
		fmt.Fprintf(r.out, "test delivery: requested, but whether it arrived cannot be checked: %v\n", err)
		return exitOK, nil
	}

	start := time.Now()
	arrived, err := r.sendTest(ctx, t, id, log)
	if err != nil {
		return exitFailed, err
	}
	if arrived {
		fmt.Fprintf(r.out, "test delivery: arrived after %v\n", time.Since(start).Round(10*time.Millisecond))
		return exitOK, nil
	}

	fmt.Fprintf(r.out, "test delivery: none arrived within %v.\n", r.wait)
	fmt.Fprintf(r.out, "  Check that octavo serve is running with this OCTAVO_WEBHOOK_SECRET and database, and that the forge reaches it at %s.\n", r.shownURL)
	if privateHost(ctx, r.cfg.PublicURL.Hostname()) {
		fmt.Fprintf(r.out, "  %s is a loopback or private address, which the forge delivers to only when allowed:\n", r.cfg.PublicURL.Hostname())
		fmt.Fprintln(r.out, "  add it (or \"loopback\" / \"private\") to ALLOWED_HOST_LIST in the forge's app.ini, under")
		fmt.Fprintln(r.out, "  [webhook] on Gitea 1.26 and Forgejo, or [security] on Gitea 1.27, then restart the forge.")
	}
	return exitNotDelivered, nil
}

// hostLookupTimeout bounds resolving the public URL's host name for the
// hint above.
const hostLookupTimeout = 2 * time.Second

// privateHost reports whether host is, or resolves to, a loopback,
// private, link-local or unspecified address: the ones the forges refuse to
// deliver to unless ALLOWED_HOST_LIST allows them.
func privateHost(ctx context.Context, host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ctx, cancel := context.WithTimeout(ctx, hostLookupTimeout)
		defer cancel()
		addrs, _ = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}
	for _, a := range addrs {
		a = a.Unmap()
		if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() {
			return true
		}
	}
	return false
}
