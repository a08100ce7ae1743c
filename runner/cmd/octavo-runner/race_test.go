//go:build race

package main

// raceEnabled makes TestMain build the runner with the race detector when
// the tests themselves run with -race, so the engine's concurrency is
// checked inside the real binary.
const raceEnabled = true
