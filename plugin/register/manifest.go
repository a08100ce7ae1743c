package register

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/octavo-ci/octavo/plugin/config"
	"github.com/octavo-ci/octavo/plugin/forge"
)

// ManifestVersion is the version plugin.json announces.
//
// NOTE: octavo does not report a version of its own yet, and nothing ties
// this constant to the version octavo-runner reports (set with -ldflags or
// taken from the build information).
const ManifestVersion = "0.1.0"

// Manifest is the content of plugin.json, the file a forge administrator or
// packager reads to install octavo. It is generated from the Go values it
// describes (see [BuildManifest]), so it cannot drift from the binaries.
type Manifest struct {
	Schema      string           `json:"$schema"`
	Name        string           `json:"name"`
	Version     string           `json:"version"`
	Description string           `json:"description"`
	Forges      []ManifestForge  `json:"forges"`
	Binaries    []ManifestBinary `json:"binaries"`
	Webhook     ManifestWebhook  `json:"webhook"`
	TokenScopes []ManifestScope  `json:"token_scopes"`
	Settings    []config.Setting `json:"settings"`
}

// ManifestForge is a forge octavo works with and the oldest version tested.
type ManifestForge struct {
	Kind       string `json:"kind"`
	MinVersion string `json:"min_version"`
}

// ManifestBinary is one executable and the Go package that builds it.
type ManifestBinary struct {
	Name        string `json:"name"`
	Package     string `json:"package"`
	Description string `json:"description"`
}

// ManifestWebhook is the webhook the forge must send.
type ManifestWebhook struct {
	Path            string   `json:"path"`
	Events          []string `json:"events"`
	ContentType     string   `json:"content_type"`
	Signature       string   `json:"signature"`
	SignatureHeader string   `json:"signature_header"`
}

// ManifestScope is a forge token scope and what octavo needs it for.
type ManifestScope struct {
	Scope    string `json:"scope"`
	Required bool   `json:"required"`
	UsedFor  string `json:"used_for"`
}

// BuildManifest returns the manifest from the values octavo itself uses:
// the settings table, the registered webhook events and path.
func BuildManifest() Manifest {
	return Manifest{
		Schema:      "./schema/plugin.schema.json",
		Name:        "octavo",
		Version:     ManifestVersion,
		Description: "Continuous integration sidecar for Gitea and Forgejo: runs a repository's Starlark pipeline (.octavo/ci.star) on every push, shows it live on its own status page, serves badges and reports the result as a commit status.",
		Forges: []ManifestForge{
			{Kind: forge.KindGitea, MinVersion: "1.26.0"},
			{Kind: forge.KindForgejo, MinVersion: "11.0.1"},
		},
		Binaries: []ManifestBinary{
			{Name: "octavo", Package: "./plugin/cmd/octavo", Description: "The sidecar: octavo serve receives webhooks, queues and runs pipelines and serves the status page; octavo register installs the webhook."},
			{Name: "octavo-runner", Package: "./runner/cmd/octavo-runner", Description: "Runs one pipeline and writes its events as JSON lines; needs no server or database."},
		},
		Webhook: ManifestWebhook{
			Path:            "/" + HookPath,
			Events:          slices.Clone(forge.HookEvents),
			ContentType:     "json",
			Signature:       "hmac-sha256",
			SignatureHeader: "X-Gitea-Signature",
		},
		TokenScopes: []ManifestScope{
			{Scope: "write:repository", Required: true, UsedFor: "post commit statuses, read repositories and branches, fetch private repositories, and manage repository webhooks with octavo register"},
			{Scope: "write:organization", Required: false, UsedFor: "octavo register --org: manage organisation webhooks"},
		},
		Settings: slices.Clone(config.Settings),
	}
}

// MarshalManifest returns plugin.json's exact text: the manifest indented
// by two spaces, with a final newline.
func MarshalManifest(m Manifest) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep <, > and & readable in descriptions
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode plugin manifest: %w", err)
	}
	return buf.Bytes(), nil
}
