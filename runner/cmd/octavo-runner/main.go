// Command octavo-runner runs one Octavo pipeline (.octavo/ci.star) and
// reports everything it does as a JSON-lines event stream, or as a
// readable log on a terminal.
//
// Usage:
//
//	octavo-runner run [--workspace DIR] [--pipeline FILE] [--events PATH|-]
//	                  [--source NAME=FILE.json]... [--secrets FILE.json] [--parallel N]
//	octavo-runner check [--pipeline FILE]
//	octavo-runner version
//
// Exit status of run: 0 whenever the run completed, whatever its jobs did,
// including a pipeline that failed to load or validate (the stream then
// ends with a run_finished event of outcome pipeline_failure). 1 when the
// runner itself failed, such as an unwritable event stream; 2 for invalid
// usage; 128+N after signal N (SIGINT or SIGTERM), which stops every step's
// process group and writes no run_finished.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=…". When it
// is empty, the module version or the git revision from the build
// information is used.
var version = ""

// Exit codes besides 0 and 128+signal.
const (
	exitFailure = 1
	exitUsage   = 2
)

const usage = `Usage:
  octavo-runner run [--workspace DIR] [--pipeline FILE] [--events PATH|-]
                    [--source NAME=FILE.json]... [--secrets FILE.json] [--parallel N]
  octavo-runner check [--pipeline FILE]
  octavo-runner version

Run "octavo-runner COMMAND -h" for the options of a command.
`

func main() {
	os.Exit(runCLI(os.Args[1:], os.Stdout, os.Stderr))
}

// runCLI dispatches to a subcommand and returns the exit status.
func runCLI(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "octavo-runner: missing command\n\n"+usage)
		return exitUsage
	}

	switch args[0] {
	case "run":
		return runCommand(args[1:], stdout, stderr)
	case "check":
		return checkCommand(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "octavo-runner %s\n", currentVersion())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "octavo-runner: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

func currentVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	for _, setting := range info.Settings {
		if setting.Key == "vcs.revision" && len(setting.Value) >= 12 {
			return "dev-" + setting.Value[:12]
		}
	}
	return "dev"
}
