// Package ui serves the status page: the repository, run list and run pages,
// the JSON API, the live log websocket, badges and the CCTray feed. Runs of
// private repositories are invisible on every route: every response about
// them is the one for a run or repository that does not exist.
package ui

import (
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"
	"github.com/gorilla/websocket"

	"github.com/octavo-ci/octavo/plugin/live"
	"github.com/octavo-ci/octavo/plugin/store"
	"github.com/octavo-ci/octavo/web"
)

// Options configures [New].
type Options struct {
	// Store is the database the pages read. Required.
	Store *store.Store
	// Hub streams live events to the websocket. Required.
	Hub *live.Hub
	// PublicURL is the URL users reach the status page at, such as
	// https://ci.example.com/ci/. Its path is the prefix of every link and
	// asset URL the pages write, and its host is the websocket's allowed
	// Origin. Nil means the site root and an Origin equal to the request's
	// Host.
	PublicURL *url.URL
	// ForgeURL is the forge's base URL, used for commit links when a
	// repository has no HTML URL of its own. Nil leaves such commits
	// unlinked.
	ForgeURL *url.URL
	// AllowedOrigins lists further origins (https://host:port, or a bare
	// host:port) whose pages may open the websocket.
	AllowedOrigins []string
	// Logger receives request errors. Nil discards them.
	Logger *slog.Logger
}

// UI holds the parsed templates and settings of the status page. It is safe
// for concurrent use.
type UI struct {
	store     *store.Store
	hub       *live.Hub
	base      string // path prefix, always ending in "/"
	publicURL *url.URL
	forgeURL  *url.URL
	origins   map[string]bool
	logger    *slog.Logger
	pages     map[string]*template.Template
	badge     *template.Template
	upgrader  websocket.Upgrader
}

// New parses the embedded templates and returns the status page.
func New(opts Options) (*UI, error) {
	if opts.Store == nil {
		return nil, errors.New("create status page: Options.Store is nil")
	}
	if opts.Hub == nil {
		return nil, errors.New("create status page: Options.Hub is nil")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	u := &UI{
		store:     opts.Store,
		hub:       opts.Hub,
		base:      "/",
		publicURL: opts.PublicURL,
		forgeURL:  opts.ForgeURL,
		origins:   make(map[string]bool),
		logger:    logger.With("component", "ui"),
		pages:     make(map[string]*template.Template),
	}
	if opts.PublicURL != nil {
		u.base = "/" + strings.Trim(opts.PublicURL.Path, "/") + "/"
		if u.base == "//" {
			u.base = "/"
		}
	}
	for _, o := range opts.AllowedOrigins {
		key, err := originKey(o)
		if err != nil {
			return nil, fmt.Errorf("create status page: allowed origin %q: %w (write it as https://host[:port])", o, err)
		}
		u.origins[key] = true
	}

	for _, page := range []string{"index", "repo", "run"} {
		t, err := template.New(page).ParseFS(web.Templates(), "layout.html", page+".html")
		if err != nil {
			return nil, fmt.Errorf("parse %s template: %w", page, err)
		}
		u.pages[page] = t
	}
	badge, err := template.ParseFS(web.Templates(), "badge.svg")
	if err != nil {
		return nil, fmt.Errorf("parse badge template: %w", err)
	}
	u.badge = badge

	u.upgrader = websocket.Upgrader{
		ReadBufferSize:  512,
		WriteBufferSize: 4096,
		CheckOrigin:     u.checkOrigin,
	}
	return u, nil
}

// Register adds every route of the status page to r: the pages, the API
// under /api/v1/, the websocket, badges, /cc.xml and /static/. The paths are
// relative to r, so mount r (or a subrouter of it) at PublicURL's path.
func (u *UI) Register(r *mux.Router) {
	u.registerPageRoutes(r)
	u.registerAPIRoutes(r)
	u.registerBadgeRoutes(r)
	r.PathPrefix("/static/").Handler(u.staticHandler()).Methods(http.MethodGet, http.MethodHead)
}

// staticHandler serves web's static files whatever prefix the router was
// mounted under, by cutting the path after "/static/".
func (u *UI) staticHandler() http.Handler {
	files := web.Static()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := strings.LastIndex(r.URL.Path, "/static/")
		r2 := r.Clone(r.Context())
		r2.URL.Path = r.URL.Path[i+len("/static"):]
		r2.URL.RawPath = ""
		files.ServeHTTP(w, r2)
	})
}

// link returns the path of a page below the prefix, for rel such as
// "runs/12"; each segment in rel must already be escaped.
func (u *UI) link(rel string) string {
	return u.base + rel
}

// notFound writes the same 404 for missing and private things, so that no
// response reveals a private repository.
func (u *UI) notFound(w http.ResponseWriter) {
	http.Error(w, "404 page not found", http.StatusNotFound)
}

func (u *UI) serverError(w http.ResponseWriter, r *http.Request, err error) {
	u.logger.ErrorContext(r.Context(), "status page request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	http.Error(w, "internal server error", http.StatusInternalServerError)
}
