//go:build !linux

package step

import "os/exec"

// AdoptOrphans does nothing where there is no child subreaper: a process
// a step detaches with setsid outlives the step.
func AdoptOrphans() error { return nil }

// EndOrphans does nothing where [AdoptOrphans] does nothing.
func EndOrphans() (int, error) { return 0, nil }

func startStep(cmd *exec.Cmd) error { return cmd.Start() }

func finishStep(int) {}
