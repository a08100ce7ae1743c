//go:build linux

package main

import "syscall"

// prSetDumpable is PR_SET_DUMPABLE from <linux/prctl.h>.
const prSetDumpable = 4

// protectProcess marks octavo serve as not dumpable. Linux then makes its
// /proc/PID files owned by root, so pipeline steps running as the same
// user can no longer read the forge token and webhook secret from
// /proc/PID/environ or attach with ptrace. Root still can, and the flag
// does not pass to the runner, which execve resets.
func protectProcess() error {
	_, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetDumpable, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
