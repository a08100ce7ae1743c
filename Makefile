# Octavo build, test and demo entry points. Run `make help` for the list.

GO        ?= go
BIN       := bin
PKGS      := ./...
STATICCHECK_VERSION := v0.8.2

.PHONY: help build run demo test e2e bench bench-go bench-process lint clean

help:
	@echo "make build   build bin/octavo and bin/octavo-runner"
	@echo "make run     build and start octavo serve with the OCTAVO_* environment"
	@echo "make demo    real Gitea on 127.0.0.1:3000, octavo on 127.0.0.1:8080, a pushed sample repository and its run"
	@echo "make test    every test, the end-to-end suite on a real Gitea and the Chromium test included"
	@echo "make e2e     only the end-to-end suite"
	@echo "make bench   Go benchmarks and whole-process timings with hyperfine (see BENCHMARKS.md)"
	@echo "make lint    gofmt, go vet and staticcheck"

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/octavo-runner ./runner/cmd/octavo-runner
	$(GO) build -o $(BIN)/octavo ./plugin/cmd/octavo

run: build
	$(BIN)/octavo serve

# The demo keeps its state in .cache/demo, so a second run reuses Gitea, the
# admin and the sample repository. Ctrl-C stops everything it started.
demo: build
	$(GO) build -o $(BIN)/octavo-demo ./plugin/cmd/octavo-demo
	$(BIN)/octavo-demo -bin $(BIN) -state .cache/demo -sample testdata/demo

test:
	$(GO) test -count=1 -timeout 60m $(PKGS)

e2e:
	$(GO) test -count=1 -timeout 30m -run 'E2E' ./plugin/e2e/...

bench: bench-go bench-process

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Whole-process timings of octavo-runner with public tools: hyperfine
# compares a 1,000,000-line step against the same command writing to a
# file, and /usr/bin/time -v reports the runner's peak RSS.
BENCH_DIR := .cache/bench
bench-process: build
	@command -v hyperfine >/dev/null || { echo "hyperfine is missing: apt-get install hyperfine"; exit 1; }
	@mkdir -p $(BENCH_DIR)/ws/.octavo
	@printf 'def big(ctx):\n    ctx.sh("seq 1 1000000")\n\njob("big", inputs = ["octavo/push"], run = big)\n' > $(BENCH_DIR)/ws/.octavo/ci.star
	hyperfine --warmup 1 --runs 10 --export-markdown $(BENCH_DIR)/runner.md \
		-n 'seq to a file' 'seq 1 1000000 > $(BENCH_DIR)/plain.txt' \
		-n 'octavo-runner events file' '$(BIN)/octavo-runner run --workspace $(BENCH_DIR)/ws --events $(BENCH_DIR)/events.jsonl'
	@/usr/bin/time -v $(BIN)/octavo-runner run --workspace $(BENCH_DIR)/ws --events $(BENCH_DIR)/events.jsonl 2>&1 | grep 'Maximum resident'

bench-ui:
	$(GO) test -run '^$$' -bench . -benchmem ./plugin/ui/... ./plugin/live/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

clean:
	rm -rf $(BIN)
