package plugin

import (
	"github.com/gorilla/mux"

	"github.com/octavo-ci/octavo/plugin/ui"
)

// newUI builds the status pages, live websocket and badges.
func (s *Server) newUI() (*ui.UI, error) {
	return ui.New(ui.Options{
		Store:          s.st,
		Hub:            s.hub,
		PublicURL:      s.cfg.PublicURL,
		ForgeURL:       s.cfg.ForgeURL,
		AllowedOrigins: s.cfg.AllowedOrigins,
		Logger:         s.log,
	})
}

// registerUI mounts the status UI's routes; they take precedence over the
// server's own API routes on the same paths.
func registerUI(s *Server, r *mux.Router) {
	if s.ui != nil {
		s.ui.Register(r)
	}
}
