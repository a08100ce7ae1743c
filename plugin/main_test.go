package plugin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// runnerPath is the real octavo-runner, built once for this package's
// tests by TestMain.
var runnerPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "octavo-plugin-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	runnerPath = filepath.Join(dir, "octavo-runner")
	build := exec.Command("go", "build", "-o", runnerPath, "../runner/cmd/octavo-runner")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build octavo-runner: %v\n", err)
		os.Exit(1)
	}

	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// execCommand is exec.Command, named so helpers read as plain calls.
var execCommand = exec.Command
