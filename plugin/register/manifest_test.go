package register

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/octavo-ci/octavo/plugin/config"
	"github.com/octavo-ci/octavo/schema/schematest"
)

var update = flag.Bool("update", false, "rewrite plugin.json at the repository root from the Go source")

// manifestPath is plugin.json at the repository root, seen from this
// package's folder.
var manifestPath = filepath.Join("..", "..", "plugin.json")

func readManifestFile(t *testing.T) []byte {
	t.Helper()
	text, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatalf("read plugin.json: %v (run go test ./plugin/register -run TestPluginManifestUpToDate -update to write it)", err)
	}
	return text
}

// TestPluginManifestUpToDate regenerates plugin.json with -update and
// otherwise fails when the file differs from the one generated from the source.
func TestPluginManifestUpToDate(t *testing.T) {
	want, err := MarshalManifest(BuildManifest())
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(manifestPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	got := readManifestFile(t)
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("plugin.json is out of date (-generated +file); run go test ./plugin/register -run TestPluginManifestUpToDate -update:\n%s", diff)
	}
}

func TestPluginManifestMatchesSchema(t *testing.T) {
	sch, err := schematest.Compile("plugin.schema.json")
	if err != nil {
		t.Fatal(err)
	}

	if err := schematest.ValidateJSON(sch, readManifestFile(t)); err != nil {
		t.Errorf("plugin.json does not match schema/plugin.schema.json: %v", err)
	}
}

func TestPluginManifestSettingsEqualConfig(t *testing.T) {
	var m Manifest
	if err := json.Unmarshal(readManifestFile(t), &m); err != nil {
		t.Fatalf("decode plugin.json: %v", err)
	}

	if diff := cmp.Diff(config.Settings, m.Settings); diff != "" {
		t.Errorf("plugin.json settings differ from config.Settings (-config +plugin.json):\n%s", diff)
	}
	seen := map[string]bool{}
	for _, s := range m.Settings {
		for _, key := range []string{"name " + s.Name, "flag " + s.Flag, "env " + s.Env} {
			if seen[key] {
				t.Errorf("setting %s: %s is used twice", s.Name, key)
			}
			seen[key] = true
		}
	}
}

func TestPluginSchemaRejectsBadManifests(t *testing.T) {
	sch, err := schematest.Compile("plugin.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	good, err := MarshalManifest(BuildManifest())
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		change func(m map[string]any)
	}{
		{"settings missing", func(m map[string]any) { delete(m, "settings") }},
		{"unknown top-level field", func(m map[string]any) { m["homepage"] = "https://example.com" }},
		{"setting of unknown type", func(m map[string]any) { setting(m, 0)["type"] = "float" }},
		{"bool setting with a word default", func(m map[string]any) {
			s := setting(m, 0)
			s["type"], s["default"] = "bool", "yes"
		}},
		{"secret flag as text", func(m map[string]any) { setting(m, 0)["secret"] = "false" }},
		{"environment variable outside OCTAVO_", func(m map[string]any) { setting(m, 0)["env"] = "HOME" }},
		{"setting without description", func(m map[string]any) { delete(setting(m, 0), "description") }},
		{"webhook event octavo does not handle", func(m map[string]any) {
			m["webhook"].(map[string]any)["events"] = []any{"push", "issues"}
		}},
		{"form content type", func(m map[string]any) { m["webhook"].(map[string]any)["content_type"] = "form" }},
		{"unknown forge", func(m map[string]any) {
			m["forges"] = []any{map[string]any{"kind": "gitlab", "min_version": "17.0.0"}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(good, &m); err != nil {
				t.Fatal(err)
			}
			tt.change(m)
			text, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}

			if err := schematest.ValidateJSON(sch, text); err == nil {
				t.Errorf("schema accepted the manifest, want a rejection")
			} else if !strings.Contains(err.Error(), "validate instance") {
				t.Errorf("got %v, want a validation error", err)
			}
		})
	}
}

func setting(m map[string]any, i int) map[string]any {
	return m["settings"].([]any)[i].(map[string]any)
}
