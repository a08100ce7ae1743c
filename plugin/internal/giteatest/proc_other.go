//go:build !linux

package giteatest

import "syscall"

// childAttr puts a child in its own process group. Outside Linux there is
// no parent-death signal, so a child outlives a caller that dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
