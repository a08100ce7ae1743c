package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// peakRSSKB returns the process's peak resident set size in KiB (VmHWM),
// or 0 when it cannot be read. Unlike getrusage, VmHWM starts afresh at
// exec, so it excludes the memory of the parent that forked the runner.
func peakRSSKB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()

	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb
		}
	}
	return 0
}
