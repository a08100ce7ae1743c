package ui

import (
	"github.com/gorilla/mux"

	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// handleLive upgrades to a websocket that replays the run's stored events
// after ?after=SEQ and then streams live ones; see [live.Hub.Stream].
func (u *UI) handleLive(w http.ResponseWriter, r *http.Request) {
	after, err := intParam(r.URL.Query().Get("after"), 0, 0)
	if err != nil {
		http.Error(w, "invalid after="+strconv.Quote(r.URL.Query().Get("after"))+": want a sequence number of 0 or more", http.StatusBadRequest)
		return
	}
	id, ok := parseRunID(mux.Vars(r)["id"])
	if !ok {
		u.notFound(w)
		return
	}
	run, found, err := u.store.PublicRun(r.Context(), id)
	if err != nil {
		u.serverError(w, r, err)
		return
	}
	if !found {
		u.notFound(w)
		return
	}

	// Upgrade writes its own error response (403 for a bad Origin).
	conn, err := u.upgrader.Upgrade(w, r, nil)
	if err != nil {
		u.logger.DebugContext(r.Context(), "websocket upgrade rejected", "run_id", run.ID, "err", err)
		return
	}
	if err := u.hub.Stream(r.Context(), conn, u.store, run.ID, after); err != nil {
		u.logger.ErrorContext(r.Context(), "live stream failed", "run_id", run.ID, "err", err)
	}
}

// checkOrigin accepts a websocket request without an Origin header (not a
// browser, so no cross-site risk), one whose Origin has PublicURL's scheme
// and host (or, without PublicURL, the request's Host), and one from
// AllowedOrigins.
func (u *UI) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	key, err := originKey(origin)
	if err != nil {
		return false
	}
	if u.origins[key] {
		return true
	}
	host := strings.ToLower(key[strings.Index(key, "://")+3:])
	if u.origins[host] {
		return true
	}
	if u.publicURL != nil && u.publicURL.Host != "" {
		return key == strings.ToLower(u.publicURL.Scheme+"://"+u.publicURL.Host)
	}
	return host == strings.ToLower(r.Host)
}

// originKey normalises an origin to "scheme://host[:port]" in lower case,
// or a bare "host[:port]" when it has no scheme.
func originKey(origin string) (string, error) {
	if !strings.Contains(origin, "://") {
		if origin == "" || strings.ContainsAny(origin, "/?#@ ") {
			return "", errors.New("not a host[:port]")
		}
		return strings.ToLower(origin), nil
	}
	u, err := url.Parse(origin)
	if err != nil {
		return "", err
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", errors.New("not an origin of the form scheme://host[:port]")
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}
