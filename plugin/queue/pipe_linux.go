package queue

import (
	"os"

	"golang.org/x/sys/unix"
)

// eventPipeSize is the kernel buffer asked for the runner's event pipe.
// With Linux's default of 64 KiB, a runner printing output as fast as it
// can blocks on the pipe every few hundred lines and the two processes
// take turns; a larger buffer lets it run ahead while a batch commits.
const eventPipeSize = 1 << 20

// growPipe enlarges the buffer of pipe f. It is best effort: without the
// privilege to exceed /proc/sys/fs/pipe-max-size the default stays.
func growPipe(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, eventPipeSize)
	})
}
