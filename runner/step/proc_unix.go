//go:build unix

package step

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// group ends a step's process group. The group id equals the pid of the
// first process. That process stays a zombie until wait reaps it, which
// keeps the id from being reused, and every signal is sent before that.
type group struct {
	cmd   *exec.Cmd
	grace time.Duration

	mu     sync.Mutex
	reaped bool
	kill   *time.Timer
}

// newGroup makes cmd start in a new process group and arranges for a
// cancelled context to send SIGTERM to the group, then SIGKILL after grace.
func newGroup(cmd *exec.Cmd, grace time.Duration) *group {
	g := &group{cmd: cmd, grace: grace}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		err := g.signal(syscall.SIGTERM)
		g.mu.Lock()
		if !g.reaped && g.kill == nil {
			g.kill = time.AfterFunc(grace, func() { _ = g.signal(syscall.SIGKILL) })
		}
		g.mu.Unlock()
		return err
	}
	// WaitDelay is a backstop: exec kills the first process itself if it
	// outlives SIGTERM by this much. The group SIGKILL above normally comes
	// first.
	cmd.WaitDelay = grace + time.Second
	return g
}

// signal sends sig to every process of the group. It returns
// os.ErrProcessDone once the group is gone or reaped.
func (g *group) signal(sig syscall.Signal) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.reaped {
		return os.ErrProcessDone
	}
	err := syscall.Kill(-g.cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// wait waits for the first process to exit, kills what is left of its
// group, reaps the first process with cmd.Wait, and returns Wait's error.
func (g *group) wait() error {
	if awaitExit(g.cmd.Process.Pid) {
		_ = g.signal(syscall.SIGKILL)
		g.markReaped()
		return g.cmd.Wait()
	}

	// NOTE: without waitid(WNOWAIT) the first process is reaped before the
	// group is killed, so in the short gap between the two its id could in
	// theory be reused as a new process group id.
	err := g.cmd.Wait()
	_ = g.signal(syscall.SIGKILL)
	g.markReaped()
	return err
}

// markReaped stops any pending SIGKILL: once the first process is reaped,
// its id no longer names this group.
func (g *group) markReaped() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reaped = true
	if g.kill != nil {
		g.kill.Stop()
	}
}

// describeExit explains an exit without an exit code.
func describeExit(ps *os.ProcessState, waitErr error) error {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Errorf("terminated by signal %s", unix.SignalName(ws.Signal()))
	}
	if waitErr != nil {
		return fmt.Errorf("wait for step: %w", waitErr)
	}
	return errors.New("step ended without an exit code")
}
