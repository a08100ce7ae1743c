package config

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// RepoSecrets maps "OWNER/NAME" or "OWNER/*" to the pipeline secrets
// (name to value) of those repositories.
type RepoSecrets map[string]map[string]string

// LoadSecrets reads the pipeline secrets file. An empty path gives no
// secrets. Keys that are not OWNER/NAME or OWNER/* are rejected.
func LoadSecrets(path string) (RepoSecrets, error) {
	if path == "" {
		return RepoSecrets{}, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secrets file (OCTAVO_SECRETS_FILE): %w", err)
	}
	var s RepoSecrets
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("secrets file %s must be a JSON object of OWNER/NAME to an object of secret names to string values: %w", path, err)
	}
	for key := range s {
		owner, name, ok := strings.Cut(key, "/")
		if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("secrets file %s: invalid key %q; use OWNER/NAME or OWNER/*", path, key)
		}
	}
	return s, nil
}

// For returns the secrets of the repository fullName ("owner/name"): those
// of OWNER/* overlaid with those of OWNER/NAME, which win on equal names.
func (s RepoSecrets) For(fullName string) map[string]string {
	out := map[string]string{}
	owner, _, _ := strings.Cut(fullName, "/")
	for k, v := range s[owner+"/*"] {
		out[k] = v
	}
	for k, v := range s[fullName] {
		out[k] = v
	}
	return out
}
