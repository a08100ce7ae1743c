package step

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// awaitExit blocks until process pid has exited, without reaping it, and
// returns true. Keeping the zombie keeps its pid, and so its process group
// id, from being reused while the rest of the group is killed.
func awaitExit(pid int) bool {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err == nil
		}
	}
}

// pipeSize is the capacity asked for each output pipe. A step printing
// fast keeps running while the runner writes events, instead of stopping
// every 64 KiB (the default); 1 MiB is the most an unprivileged process
// may ask for by default (/proc/sys/fs/pipe-max-size).
const pipeSize = 1 << 20

// growPipe raises the capacity of the pipe that f is one end of. It is
// only a speed-up, so a refusal is ignored.
func growPipe(f *os.File) {
	conn, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = conn.Control(func(fd uintptr) {
		_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize)
	})
}
