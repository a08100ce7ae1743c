package giteatest

import "syscall"

// childAttr puts a child in its own process group, so a Ctrl-C meant for
// the caller does not reach it before the caller stops it. The child also
// gets SIGTERM if the caller dies first, for example a test binary killed
// by -timeout, so no Gitea or octavo outlives the process that started it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
