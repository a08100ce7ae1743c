package plugin

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/octavo-ci/octavo/plugin/webhook"
)

func (s *Server) registerHookRoutes(r *mux.Router) {
	r.HandleFunc("/hooks", s.handleHook).Methods(http.MethodPost)
}

// hookResponse is the JSON body of a webhook answer.
type hookResponse struct {
	Result    string `json:"result"`
	RunID     uint   `json:"run_id,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// handleHook verifies and stores one delivery and answers once it is
// committed: 202 when a run was queued, 200 for everything else that was
// accepted, 4xx with the reason for bad input. It never calls git or the
// forge.
func (s *Server) handleHook(w http.ResponseWriter, r *http.Request) {
	log := requestLogger(r.Context(), s.log)
	if s.stopping.Load() {
		writeError(w, http.StatusServiceUnavailable, "octavo is shutting down; the forge will retry")
		return
	}

	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		s.reject(w, http.StatusUnsupportedMediaType, "unsupported Content-Encoding "+strconv.Quote(enc)+"; send the body uncompressed, as Gitea and Forgejo do")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.WebhookMaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.reject(w, http.StatusRequestEntityTooLarge, "body larger than the limit of "+strconv.FormatInt(s.cfg.WebhookMaxBody, 10)+" bytes; raise OCTAVO_WEBHOOK_MAX_BODY to accept it")
			return
		}
		s.reject(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}

	signed, err := webhook.SignedBody(r.Header, body)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, webhook.ErrUnsupportedContentType) {
			code = http.StatusUnsupportedMediaType
		}
		s.reject(w, code, err.Error())
		return
	}
	if err := webhook.Verify(r.Header, []byte(s.cfg.WebhookSecret), signed); err != nil {
		// The message names the header but never its value.
		log.WarnContext(r.Context(), "webhook rejected", "reason", err.Error(), "remote", r.RemoteAddr)
		s.reject(w, http.StatusUnauthorized, err.Error()+"; set the same secret on the forge's webhook and OCTAVO_WEBHOOK_SECRET")
		return
	}

	d, err := webhook.Parse(r.Header, signed)
	if err != nil {
		s.reject(w, http.StatusBadRequest, err.Error())
		return
	}

	res, err := s.queue.Intake(r.Context(), d)
	if err != nil {
		log.ErrorContext(r.Context(), "store webhook delivery", "delivery_id", d.ID, "repo", d.Repo.FullName, "err", err)
		writeError(w, http.StatusInternalServerError, "could not store the delivery; the forge may redeliver it")
		return
	}

	log.DebugContext(r.Context(), "webhook delivery", "delivery_id", d.ID, "event", d.Event, "repo", d.Repo.FullName, "result", res.Result, "duplicate", res.Duplicate)
	code := http.StatusOK
	if res.RunID != 0 {
		code = http.StatusAccepted
	}
	writeJSON(w, code, hookResponse{Result: res.Result, RunID: res.RunID, Duplicate: res.Duplicate})
}

func (s *Server) reject(w http.ResponseWriter, code int, msg string) {
	s.metrics.Deliveries.WithLabelValues("rejected").Inc()
	writeError(w, code, msg)
}
