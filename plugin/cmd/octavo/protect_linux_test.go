//go:build linux

package main

import (
	"syscall"
	"testing"
)

// TestProtectProcessClearsDumpable checks the flag that keeps pipeline
// steps of the same user out of /proc/PID/environ of octavo serve, which
// holds OCTAVO_FORGE_TOKEN and OCTAVO_WEBHOOK_SECRET. A pipeline once read
// both from there.
func TestProtectProcessClearsDumpable(t *testing.T) {
	if err := protectProcess(); err != nil {
		t.Fatalf("protectProcess: %v", err)
	}
	const prGetDumpable = 3
	got, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prGetDumpable, 0, 0)
	if errno != 0 {
		t.Fatalf("prctl(PR_GET_DUMPABLE): %v", errno)
	}
	if got != 0 {
		t.Errorf("dumpable = %d, want 0", got)
	}
}
