//go:build linux

package step

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxOrphanRounds bounds [EndOrphans]. Each round kills one generation of a
// daemon's descendants, and real daemons are two or three deep.
const maxOrphanRounds = 32

// reaper tracks the runner's own children once [AdoptOrphans] made it a
// child subreaper. Its lock is held while a step starts, until the step's
// pid is in leaders, and while orphans are reaped, so a step that exits at
// once is never reaped as an orphan before Run waits for it.
var reaper struct {
	sync.Mutex
	adopted bool
	// leaders counts the running step leaders by pid. A count, not a flag,
	// stays right if a pid is reused before its old step has finished.
	leaders map[int]int
}

// AdoptOrphans makes the runner the child subreaper of its descendants. A
// process a step detaches with setsid or a double fork is then reparented
// to the runner instead of init, so [EndOrphans] can end it. Orphans that
// exit are reaped at the end of each step and every second. After this
// call the process must start no child except through [Run], because an
// exited child that Run did not start may be reaped before its own wait.
func AdoptOrphans() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become child subreaper: %w", err)
	}
	reaper.Lock()
	defer reaper.Unlock()
	if reaper.adopted {
		return nil
	}
	reaper.adopted = true
	reaper.leaders = map[int]int{}
	// NOTE: the ticker lives as long as the process, which suits the
	// runner: it adopts orphans once and exits after its run.
	go func() {
		for range time.Tick(reapInterval) {
			reaper.Lock()
			reapExited()
			reaper.Unlock()
		}
	}()
	return nil
}

// startStep starts cmd and records it as a step leader.
func startStep(cmd *exec.Cmd) error {
	reaper.Lock()
	defer reaper.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	if reaper.adopted {
		reaper.leaders[cmd.Process.Pid]++
	}
	return nil
}

// finishStep removes the step leader pid, which Run has reaped, and reaps
// the orphans that have exited meanwhile. Without it, every background
// process a step leaves would stay a zombie of the runner until the run
// ends.
func finishStep(pid int) {
	reaper.Lock()
	defer reaper.Unlock()
	if !reaper.adopted {
		return
	}
	if reaper.leaders[pid]--; reaper.leaders[pid] <= 0 {
		delete(reaper.leaders, pid)
	}

	reapExited()
}

// reapInterval is how often the runner reaps adopted orphans that exited
// while a step still runs, such as those of "(cmd &)" in a long script.
const reapInterval = time.Second

// reapExited reaps the adopted orphans that have exited. The caller holds
// the reaper lock.
func reapExited() {
	// Peeking with WNOWAIT costs one system call when nothing has exited,
	// which is the common case, where listing the children costs far more.
	for range maxReapsPerCall {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		child := siginfoPid(&info)
		if err != nil || child == 0 {
			return
		}
		if reaper.leaders[child] > 0 {
			// Another step's leader has exited and waits for its Run, and
			// it hides the orphans behind it from the peek.
			reapExitedExcept(reaper.leaders)
			return
		}
		var status unix.WaitStatus
		_, _ = unix.Wait4(child, &status, unix.WNOHANG, nil)
	}
}

// maxReapsPerCall bounds the orphans one call of reapExited reaps. The
// rest are reaped by the next call, or by EndOrphans.
const maxReapsPerCall = 1024

// reapExitedExcept reaps every exited child of the runner whose pid is not
// in leaders.
func reapExitedExcept(leaders map[int]int) {
	children, err := childrenOf(os.Getpid())
	if err != nil {
		return
	}
	for _, child := range children {
		if leaders[child] == 0 && processState(child) == 'Z' {
			var status unix.WaitStatus
			_, _ = unix.Wait4(child, &status, unix.WNOHANG, nil)
		}
	}
}

// siginfoPid returns si_pid of a siginfo filled in by waitid, or 0. The
// field opens the union that follows three int32 fields, which is aligned
// to the size of a pointer.
func siginfoPid(info *unix.Siginfo) int {
	offset := 12
	if unsafe.Sizeof(uintptr(0)) == 8 {
		offset = 16
	}
	raw := (*[unsafe.Sizeof(unix.Siginfo{})]byte)(unsafe.Pointer(info))
	return int(int32(binary.NativeEndian.Uint32(raw[offset:])))
}

// EndOrphans kills and reaps every child process of the runner, with its
// process group, and returns how many were still running. Call it only
// when no step is running: it takes every child for an orphan a step left
// behind.
func EndOrphans() (int, error) {
	reaper.Lock()
	defer reaper.Unlock()
	if !reaper.adopted {
		return 0, nil
	}
	killed := 0
	for range maxOrphanRounds {
		pids, err := childrenOf(os.Getpid())
		if err != nil {
			return killed, err
		}
		if len(pids) == 0 {
			return killed, nil
		}
		for _, pid := range pids {
			if processState(pid) != 'Z' {
				killed++
			}
			// A detached daemon leads its own group, and its children
			// usually share it, so the group goes in one signal.
			_ = unix.Kill(-pid, unix.SIGKILL)
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		deadline := time.Now().Add(orphanReapTimeout)
		for _, pid := range pids {
			if !reapKilled(pid, deadline) {
				return killed, fmt.Errorf("end orphaned processes: process %d did not exit within %s of SIGKILL", pid, orphanReapTimeout)
			}
		}
	}
	return killed, fmt.Errorf("end orphaned processes: still finding new ones after %d rounds", maxOrphanRounds)
}

// orphanReapTimeout bounds the wait for killed orphans to exit. SIGKILL
// ends a process at once unless it is stuck in the kernel, such as on a
// hung network file system, and the runner must not hang with it.
const orphanReapTimeout = 2 * time.Second

// reapKilled polls until child pid has exited and reaps it, and reports
// whether that happened before deadline.
func reapKilled(pid int, deadline time.Time) bool {
	for {
		var status unix.WaitStatus
		got, err := unix.Wait4(pid, &status, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil || got == pid:
			// ECHILD means it is gone already.
			return true
		case time.Now().After(deadline):
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// childrenOf returns the child processes of ppid. It reads the children
// lists of ppid's threads and falls back to scanning /proc on kernels
// without them.
func childrenOf(ppid int) ([]int, error) {
	lists, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", ppid))
	if err == nil && len(lists) > 0 {
		var pids []int
		for _, list := range lists {
			data, err := os.ReadFile(list)
			if err != nil {
				// The thread ended while the lists were read.
				continue
			}
			for _, field := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(field); err == nil {
					pids = append(pids, pid)
				}
			}
		}
		return pids, nil
	}

	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var pids []int
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil {
			continue
		}
		if _, parent := statFields(pid); parent == ppid {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// processState returns the state letter of pid, such as 'Z' for a zombie,
// or 0 when it no longer exists.
func processState(pid int) byte {
	state, _ := statFields(pid)
	return state
}

// statFields returns the state and parent pid of pid from /proc, or zeros
// when it no longer exists.
func statFields(pid int) (byte, int) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0
	}
	// The fields after the command name, which is in parentheses and may
	// contain spaces, start with the state and the parent pid.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 2 || len(fields[0]) != 1 {
		return 0, 0
	}
	parent, _ := strconv.Atoi(fields[1])
	return fields[0][0], parent
}
