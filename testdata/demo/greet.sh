#!/bin/sh
# Prints a few lines, so the run page has a log to show.
set -eu
echo "hello from the octavo demo"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
for i in 1 2 3; do
	echo "step $i of 3"
done
