#!/bin/sh
# A stand-in for octavo-runner in unit tests: it accepts the runner's flags
# and runs the pipeline file as a shell script, which prints the events the
# test wants (including broken ones) and exits as the test wants.
set -eu
[ "$1" = run ] || { echo "fake runner: first argument must be run" >&2; exit 2; }
shift
while [ $# -gt 0 ]; do
	case "$1" in
	--workspace) workspace=$2; shift ;;
	--pipeline) pipeline=$2; shift ;;
	--events) events=$2; shift ;;
	--source) source=${2#octavo/push=}; shift ;;
	--secrets) secrets=$2; shift ;;
	--parallel) parallel=$2; shift ;;
	*) echo "fake runner: unknown flag $1" >&2; exit 2 ;;
	esac
	shift
done
[ "$events" = - ] || { echo "fake runner: --events must be -" >&2; exit 2; }
export workspace source secrets parallel
. "$pipeline"
