//go:build !unix

package step

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"
)

// group on systems without process groups ends only the first process.
// TODO: use a Windows job object so a step's children end with it.
type group struct{ cmd *exec.Cmd }

func newGroup(cmd *exec.Cmd, grace time.Duration) *group {
	cmd.WaitDelay = grace
	return &group{cmd: cmd}
}

func (g *group) wait() error { return g.cmd.Wait() }

func describeExit(_ *os.ProcessState, waitErr error) error {
	if waitErr != nil {
		return fmt.Errorf("wait for step: %w", waitErr)
	}
	return errors.New("step ended without an exit code")
}

// growPipe does nothing where the capacity of a pipe is fixed.
func growPipe(*os.File) {}
