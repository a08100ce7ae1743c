package plugin

import "github.com/gorilla/mux"

// registerUI mounts the status pages, the live websocket and the badges.
// TODO: mount plugin/ui once it provides Register.
func registerUI(s *Server, r *mux.Router) {}
