//go:build unix

package queue

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// setProcessGroup starts the runner in a process group of its own, so
// stopping it reaches every process that stayed in its group.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// stopTree stops the runner pid and all its descendants: SIGTERM to each
// of their process groups, then SIGKILL after grace unless the runner's
// tree is gone by then. Descendants are collected before the signals,
// because the runner puts each step in a process group of its own and a
// step orphaned by the runner's death can no longer be found through it.
func stopTree(pid int, grace time.Duration, exited <-chan struct{}) {
	targets := append([]int{pid}, descendants(pid)...)
	signalAll(targets, syscall.SIGTERM)

	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-exited:
		// The runner is gone; give its steps the rest of the grace period
		// only if any still live.
		if !anyAlive(targets[1:]) {
			return
		}
		<-timer.C
	}
	targets = append(targets, descendants(pid)...)
	signalAll(targets, syscall.SIGKILL)
}

func signalAll(pids []int, sig syscall.Signal) {
	for _, p := range pids {
		if pgid, err := syscall.Getpgid(p); err == nil && pgid > 1 {
			_ = syscall.Kill(-pgid, sig)
		}
		_ = syscall.Kill(p, sig)
	}
}

func anyAlive(pids []int) bool {
	for _, p := range pids {
		if syscall.Kill(p, 0) == nil {
			return true
		}
	}
	return false
}

// descendants returns the pids of every process below pid, read from
// /proc. On systems without /proc it returns none and stopTree reaches only
// the runner's own process group.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name in field 2 may contain spaces; fields after
		// its closing parenthesis are state, ppid, ...
		s := string(raw)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:])
		if len(fields) < 2 {
			continue
		}
		ppid, err := strconv.Atoi(fields[1])
		if err != nil {
			continue
		}
		children[ppid] = append(children[ppid], p)
	}

	var out []int
	queue := []int{pid}
	for len(queue) > 0 && len(out) < 10000 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}
