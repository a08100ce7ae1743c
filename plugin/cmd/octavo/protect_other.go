//go:build !linux

package main

// protectProcess does nothing outside Linux.
func protectProcess() error { return nil }
