package plugin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// runnerPath and octavoPath are the real binaries, built once for this
// package's tests by TestMain into one folder, as a release installs them.
var runnerPath, octavoPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "octavo-plugin-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	runnerPath = filepath.Join(dir, "octavo-runner")
	octavoPath = filepath.Join(dir, "octavo")
	for bin, pkg := range map[string]string{runnerPath: "../runner/cmd/octavo-runner", octavoPath: "./cmd/octavo"} {
		build := exec.Command("go", "build", "-o", bin, pkg)
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", pkg, err)
			os.Exit(1)
		}
	}

	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// execCommand is exec.Command, named so helpers read as plain calls.
var execCommand = exec.Command
