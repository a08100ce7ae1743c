//go:build linux

package main

import (
	"os"
	"strconv"
	"strings"
)

// processAlive reports whether pid exists and is not a zombie. A zombie
// has exited and only waits for its parent (often init) to reap it.
func processAlive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
