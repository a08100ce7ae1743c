// Package webhook reads Gitea, Forgejo and Gogs-style webhook deliveries:
// it verifies their HMAC-SHA256 signature and turns push, create and delete
// events into an [Action] for the sidecar. It does no I/O besides reading
// the body it is given.
package webhook

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Action is the sidecar's response to a delivery.
type Action string

// Actions.
const (
	// ActionRun queues a run for Delivery.Push.
	ActionRun Action = "run"
	// ActionCancel cancels the queued and active runs of Delivery.Ref.
	ActionCancel Action = "cancel"
	// ActionIgnore records the delivery and does nothing else. Reason
	// gives the cause.
	ActionIgnore Action = "ignore"
)

// Repo is the repository a delivery is about.
type Repo struct {
	Owner         string
	Name          string
	FullName      string // owner/name as the forge spells it
	CloneURL      string
	HTMLURL       string
	DefaultBranch string
	Private       bool
}

// Push is the push source a run receives as ctx.input("octavo/push"). The
// JSON field names are part of the pipeline contract.
type Push struct {
	// SHA is the commit to build. For an annotated tag it is the tagged
	// commit, not the tag object.
	SHA        string `json:"sha"`
	Ref        string `json:"ref"`
	Branch     string `json:"branch,omitempty"`
	Tag        string `json:"tag,omitempty"`
	Before     string `json:"before"`
	Pusher     string `json:"pusher"`
	Repo       string `json:"repo"`
	CloneURL   string `json:"clone_url"`
	CompareURL string `json:"compare_url"`
	Message    string `json:"message"`
}

// Delivery is a parsed webhook delivery.
type Delivery struct {
	// ID is the forge's delivery id, the same for a redelivery.
	ID string
	// Event is the coarse event name from X-Gitea-Event or its siblings.
	Event  string
	Action Action
	// Reason explains an [ActionIgnore] in a few words.
	Reason string
	Repo   Repo
	// Ref is the full ref of a run or a cancellation.
	Ref string
	// Push is set for [ActionRun].
	Push *Push
}

// eventHeaders and deliveryHeaders are consulted in order. Forgejo sends
// both its own and the Gitea names with equal values.
var (
	eventHeaders    = []string{"X-Forgejo-Event", "X-Gitea-Event", "X-Gogs-Event", "X-GitHub-Event"}
	deliveryHeaders = []string{"X-Forgejo-Delivery", "X-Gitea-Delivery", "X-Gogs-Delivery", "X-GitHub-Delivery"}
)

// skipCI matches the commit message markers that suppress a run.
var skipCI = regexp.MustCompile(`(?i)\[(skip ci|ci skip)\]`)

// zeroSHA reports whether sha is the all-zero id the forge sends for a
// created or deleted ref (40 digits for SHA-1, 64 for SHA-256).
func zeroSHA(sha string) bool {
	return sha != "" && strings.Trim(sha, "0") == ""
}

// SignedBody returns the bytes the forge signed: the body itself for JSON,
// and the decoded "payload" field for a form-encoded delivery. It returns
// [ErrUnsupportedContentType] for any other content type and [ErrMalformed]
// for a form without a payload.
func SignedBody(h http.Header, body []byte) ([]byte, error) {
	ct := h.Get("Content-Type")
	if ct == "" {
		return body, nil
	}
	media, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, fmt.Errorf("read Content-Type %q: %w", ct, ErrUnsupportedContentType)
	}
	switch media {
	case "application/json":
		return body, nil
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("decode form body: %w: %w", ErrMalformed, err)
		}
		payload := form.Get("payload")
		if payload == "" {
			return nil, fmt.Errorf("form body has no payload field: %w", ErrMalformed)
		}
		return []byte(payload), nil
	default:
		return nil, fmt.Errorf("content type %q (send application/json): %w", media, ErrUnsupportedContentType)
	}
}

// Parse reads the delivery from its headers and the signed JSON payload
// (see [SignedBody]). The caller must have checked the signature with
// [Verify]. Parse returns an error wrapping [ErrMalformed] for a supported
// event it cannot read; unsupported events come back as [ActionIgnore].
func Parse(h http.Header, payload []byte) (*Delivery, error) {
	d := &Delivery{
		ID:    firstHeader(h, deliveryHeaders),
		Event: firstHeader(h, eventHeaders),
	}
	if d.ID == "" {
		return nil, fmt.Errorf("missing X-Gitea-Delivery header: %w", ErrMalformed)
	}
	if d.Event == "" {
		return nil, fmt.Errorf("missing X-Gitea-Event header: %w", ErrMalformed)
	}

	switch d.Event {
	case "push":
		return d, parsePush(d, payload)
	case "delete":
		return d, parseRefChange(d, payload, ActionCancel)
	case "create":
		// NOTE: a new tag or branch also sends a push delivery, which
		// queues the run, so create adds nothing. Their order varies.
		return d, parseRefChange(d, payload, ActionIgnore)
	default:
		d.Action = ActionIgnore
		d.Reason = "unsupported event " + d.Event
		// The repository is only recorded with the delivery, so a payload
		// without one is no error here.
		var w struct {
			Repository *wireRepo `json:"repository"`
		}
		if json.Unmarshal(payload, &w) == nil {
			if repo, err := toRepo(w.Repository); err == nil {
				d.Repo = repo
			}
		}
		return d, nil
	}
}

func firstHeader(h http.Header, names []string) string {
	for _, n := range names {
		if v := strings.TrimSpace(h.Get(n)); v != "" {
			return v
		}
	}
	return ""
}

// The wire shapes below keep only the fields octavo reads.
type wireUser struct {
	Login    string `json:"login"`
	Username string `json:"username"`
	Name     string `json:"name"`
}

type wireRepo struct {
	Name          string   `json:"name"`
	FullName      string   `json:"full_name"`
	Owner         wireUser `json:"owner"`
	CloneURL      string   `json:"clone_url"`
	HTMLURL       string   `json:"html_url"`
	DefaultBranch string   `json:"default_branch"`
	Private       bool     `json:"private"`
}

type wireCommit struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

type wirePush struct {
	Ref        string       `json:"ref"`
	Before     string       `json:"before"`
	After      string       `json:"after"`
	CompareURL string       `json:"compare_url"`
	HeadCommit *wireCommit  `json:"head_commit"`
	Commits    []wireCommit `json:"commits"`
	Repository *wireRepo    `json:"repository"`
	Pusher     *wireUser    `json:"pusher"`
	Sender     *wireUser    `json:"sender"`
}

type wireRefChange struct {
	Ref        string    `json:"ref"`
	RefType    string    `json:"ref_type"`
	Repository *wireRepo `json:"repository"`
}

func toRepo(w *wireRepo) (Repo, error) {
	if w == nil {
		return Repo{}, fmt.Errorf("payload has no repository: %w", ErrMalformed)
	}
	r := Repo{
		Owner:         w.Owner.Login,
		Name:          w.Name,
		FullName:      w.FullName,
		CloneURL:      w.CloneURL,
		HTMLURL:       w.HTMLURL,
		DefaultBranch: w.DefaultBranch,
		Private:       w.Private,
	}
	if r.Owner == "" {
		r.Owner = w.Owner.Username
	}
	if r.FullName == "" && r.Owner != "" && r.Name != "" {
		r.FullName = r.Owner + "/" + r.Name
	}
	if r.Owner == "" || r.Name == "" {
		if owner, name, ok := strings.Cut(r.FullName, "/"); ok {
			r.Owner, r.Name = owner, name
		}
	}
	if r.Owner == "" || r.Name == "" {
		return Repo{}, fmt.Errorf("repository has no owner or name: %w", ErrMalformed)
	}
	if err := checkRepo(r); err != nil {
		return Repo{}, err
	}
	return r, nil
}

func userName(users ...*wireUser) string {
	for _, u := range users {
		if u == nil {
			continue
		}
		for _, n := range []string{u.Login, u.Username, u.Name} {
			if n != "" {
				return n
			}
		}
	}
	return ""
}

func parsePush(d *Delivery, payload []byte) error {
	var w wirePush
	if err := json.Unmarshal(payload, &w); err != nil {
		return fmt.Errorf("decode push payload: %w: %w", ErrMalformed, err)
	}
	repo, err := toRepo(w.Repository)
	if err != nil {
		return err
	}
	d.Repo = repo
	if !strings.HasPrefix(w.Ref, "refs/") {
		return fmt.Errorf("push ref %q is not a full ref: %w", w.Ref, ErrMalformed)
	}
	if err := checkRef(w.Ref); err != nil {
		return err
	}
	d.Ref = w.Ref

	if zeroSHA(w.After) {
		d.Action = ActionCancel
		d.Reason = "ref deleted"
		return nil
	}
	if w.After == "" {
		return fmt.Errorf("push payload has no after commit: %w", ErrMalformed)
	}
	if w.Before == w.After {
		d.Action = ActionIgnore
		d.Reason = "test delivery (before equals after)"
		return nil
	}

	p := &Push{
		SHA:        w.After,
		Ref:        w.Ref,
		Before:     w.Before,
		Pusher:     userName(w.Pusher, w.Sender),
		Repo:       repo.FullName,
		CloneURL:   repo.CloneURL,
		CompareURL: w.CompareURL,
	}
	if w.HeadCommit != nil {
		// An annotated tag's after is the tag object; head_commit is the
		// commit it points to, which is what a checkout and a status need.
		if w.HeadCommit.ID != "" {
			p.SHA = w.HeadCommit.ID
		}
		p.Message = w.HeadCommit.Message
	} else if len(w.Commits) > 0 {
		p.Message = w.Commits[0].Message
	}
	if err := checkCommit("push commit", p.SHA); err != nil {
		return err
	}
	if err := checkCloneURL(p.CloneURL); err != nil {
		return err
	}

	switch {
	case strings.HasPrefix(w.Ref, "refs/heads/"):
		p.Branch = strings.TrimPrefix(w.Ref, "refs/heads/")
	case strings.HasPrefix(w.Ref, "refs/tags/"):
		p.Tag = strings.TrimPrefix(w.Ref, "refs/tags/")
	default:
		d.Action = ActionIgnore
		d.Reason = "push to a ref that is neither a branch nor a tag"
		return nil
	}

	if skipCI.MatchString(p.Message) {
		d.Action = ActionIgnore
		d.Reason = "skip ci marker in the commit message"
		return nil
	}
	d.Action = ActionRun
	d.Push = p
	return nil
}

// parseRefChange reads a create or delete payload. Gitea sends the short
// ref name and Forgejo the full ref; both carry ref_type.
func parseRefChange(d *Delivery, payload []byte, action Action) error {
	var w wireRefChange
	if err := json.Unmarshal(payload, &w); err != nil {
		return fmt.Errorf("decode %s payload: %w: %w", d.Event, ErrMalformed, err)
	}
	repo, err := toRepo(w.Repository)
	if err != nil {
		return err
	}
	d.Repo = repo

	ref, err := fullRef(w.Ref, w.RefType)
	if err != nil {
		return err
	}
	d.Ref = ref
	d.Action = action
	if action == ActionCancel {
		d.Reason = "ref deleted"
	} else {
		d.Reason = "create event (the push delivery queues the run)"
	}
	return nil
}

func fullRef(ref, refType string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("payload has no ref: %w", ErrMalformed)
	}
	if !strings.HasPrefix(ref, "refs/") {
		switch refType {
		case "branch":
			ref = "refs/heads/" + ref
		case "tag":
			ref = "refs/tags/" + ref
		default:
			return "", fmt.Errorf("ref_type %q is neither branch nor tag: %w", refType, ErrMalformed)
		}
	}
	if err := checkRef(ref); err != nil {
		return "", err
	}
	return ref, nil
}
