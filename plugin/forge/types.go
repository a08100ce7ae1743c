package forge

import (
	"encoding/json"
	"log/slog"
	"time"
)

// StatusState is a commit status state. Gitea and Forgejo store any string
// without checking it, so [Client.CreateStatus] accepts only these five,
// which both forges know. Gitea's "skipped" is left out on purpose: Forgejo
// 11 has no such state and treats it as unknown when it combines states.
type StatusState string

// Commit status states known to both Gitea and Forgejo.
const (
	StatePending StatusState = "pending"
	StateSuccess StatusState = "success"
	StateError   StatusState = "error"
	StateFailure StatusState = "failure"
	StateWarning StatusState = "warning"
)

// Valid reports whether s is one of the five states both forges know.
func (s StatusState) Valid() bool {
	switch s {
	case StatePending, StateSuccess, StateError, StateFailure, StateWarning:
		return true
	default:
		return false
	}
}

// StatusOptions is the body of a commit status request. The forges trim
// white space from Context, Description and TargetURL and do not limit their
// length.
type StatusOptions struct {
	State       StatusState `json:"state"`
	TargetURL   string      `json:"target_url"`
	Description string      `json:"description"`
	Context     string      `json:"context"`
}

// Status is a commit status as the forge stored it.
type Status struct {
	ID int64 `json:"id"`
	// State comes back under the JSON name "status" (Gitea 1.26 and 1.27,
	// Forgejo 11), although the request calls it "state".
	State       StatusState `json:"status"`
	TargetURL   string      `json:"target_url"`
	Description string      `json:"description"`
	Context     string      `json:"context"`
	CreatedAt   time.Time   `json:"created_at"`
}

// CombinedStatus is the newest status of each context of one commit, as
// the forge returns it. State is the forge's own combination, whose rules
// differ between Gitea and Forgejo; octavo does not rely on it.
type CombinedStatus struct {
	State      string   `json:"state"`
	SHA        string   `json:"sha"`
	TotalCount int      `json:"total_count"`
	Statuses   []Status `json:"statuses"`
}

// Secret is a webhook secret. Like [Token] it prints and logs redacted, but
// it is sent in full in the JSON body of a hook request.
type Secret string

// String returns a redacted text, never the secret.
func (Secret) String() string { return redacted }

// GoString returns a redacted text for %#v, never the secret.
func (Secret) GoString() string { return redacted }

// LogValue implements [slog.LogValuer] with a redacted value.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON encodes the secret itself, for the forge API only.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(string(s)) }

// HookOptions is the full desired state of a webhook, for [Client.CreateHook]
// and [Client.EditHook]. A PATCH on Gitea 1.26/1.27 and Forgejo 11 is not a
// partial update: events and branch filter left out are reset (events to
// push only), so every field here is always sent. Both forges ignore
// Secret in an edit; to change a secret, delete the hook and create it again.
type HookOptions struct {
	URL          string
	ContentType  string // "json" or "form"
	Secret       Secret
	Events       []string
	BranchFilter string // "*" or "" for every branch
	Active       bool
}

// Hook is a webhook as the forge returns it. The forge never returns the
// secret.
type Hook struct {
	ID                  int64      `json:"id"`
	Type                string     `json:"type"`
	Active              bool       `json:"active"`
	Events              []string   `json:"events"`
	BranchFilter        string     `json:"branch_filter"`
	Config              HookConfig `json:"config"`
	AuthorizationHeader string     `json:"authorization_header"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
}

// HookConfig is the config object of a returned [Hook].
type HookConfig struct {
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
}

// hookRequest is the JSON body of a hook create (Type set) or edit.
type hookRequest struct {
	Type                string            `json:"type,omitempty"`
	Active              bool              `json:"active"`
	Events              []string          `json:"events"`
	BranchFilter        string            `json:"branch_filter"`
	AuthorizationHeader string            `json:"authorization_header"`
	Config              hookRequestConfig `json:"config"`
}

type hookRequestConfig struct {
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
	Secret      Secret `json:"secret"`
}

// Visibility values of a [Repository].
const (
	VisibilityPublic   = "public"
	VisibilityPrivate  = "private"
	VisibilityInternal = "internal" // visible to every signed-in user of the forge
)

// Repository is the part of a forge repository octavo needs.
type Repository struct {
	ID            int64
	FullName      string // "owner/name"
	Owner         string
	Name          string
	Visibility    string // VisibilityPublic, VisibilityPrivate or VisibilityInternal
	DefaultBranch string
	CloneURL      string
	HTMLURL       string
	// ObjectFormat is the git hash of the repository, "sha1" or "sha256".
	ObjectFormat string
	Empty        bool
	Archived     bool
}

// Private reports whether anonymous visitors must not see the repository:
// true for private and internal repositories.
func (r *Repository) Private() bool { return r.Visibility != VisibilityPublic }

// repositoryJSON is the forge's repository object, reduced to what
// [Repository] holds.
type repositoryJSON struct {
	ID       int64  `json:"id"`
	FullName string `json:"full_name"`
	Name     string `json:"name"`
	Owner    struct {
		Login string `json:"login"`
	} `json:"owner"`
	Private       bool   `json:"private"`
	Internal      bool   `json:"internal"`
	DefaultBranch string `json:"default_branch"`
	CloneURL      string `json:"clone_url"`
	HTMLURL       string `json:"html_url"`
	ObjectFormat  string `json:"object_format_name"`
	Empty         bool   `json:"empty"`
	Archived      bool   `json:"archived"`
}

// Branch is a branch and the commit at its head.
type Branch struct {
	Name    string
	SHA     string
	Message string // head commit message
}

type branchJSON struct {
	Name   string `json:"name"`
	Commit struct {
		ID      string `json:"id"`
		Message string `json:"message"`
	} `json:"commit"`
}
