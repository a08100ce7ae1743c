package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestServeRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"missing webhook secret", map[string]string{"OCTAVO_WEBHOOK_SECRET": ""},
			[]string{"OCTAVO_WEBHOOK_SECRET is missing", "OCTAVO_WEBHOOK_SECRET_FILE"}},
		{"bad public url", map[string]string{"OCTAVO_WEBHOOK_SECRET": "x", "OCTAVO_PUBLIC_URL": "ci.example.com"},
			[]string{"OCTAVO_PUBLIC_URL (-public-url): invalid URL \"ci.example.com\"", "https://"}},
		{"bad duration", map[string]string{"OCTAVO_WEBHOOK_SECRET": "x", "OCTAVO_RUN_TIMEOUT": "10"},
			[]string{"OCTAVO_RUN_TIMEOUT (-run-timeout): invalid duration \"10\"", "90s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), []string{"serve"}, &stdout, &stderr)
			if code != 2 {
				t.Errorf("exit code = %d, want 2", code)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q does not contain %q", stderr.String(), w)
				}
			}
		})
	}
}

func TestUnknownCommandPrintsUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"frobnicate"}, &stdout, &stderr); code != 2 {
		t.Errorf("exit code = %d, want 2", code)
	}
	for _, w := range []string{`unknown command "frobnicate"`, "serve", "register"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("stderr %q does not contain %q", stderr.String(), w)
		}
	}
}
