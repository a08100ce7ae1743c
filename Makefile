# Octavo build, test and demo entry points. Run `make help` for the list.

GO        ?= go
BIN       := bin
PKGS      := ./...
STATICCHECK_VERSION := v0.8.2

.PHONY: help build run demo test e2e bench lint clean

help:
	@echo "make build   build bin/octavo and bin/octavo-runner"
	@echo "make run     build and start octavo serve with the OCTAVO_* environment"
	@echo "make demo    real Gitea on 127.0.0.1:3000, octavo on 127.0.0.1:8080, a pushed sample repository and its run"
	@echo "make test    every test, the end-to-end suite on a real Gitea and the Chromium test included"
	@echo "make e2e     only the end-to-end suite"
	@echo "make bench   Go benchmarks and whole-process timings (see BENCHMARKS.md)"
	@echo "make lint    gofmt, go vet and staticcheck"

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/octavo-runner ./runner/cmd/octavo-runner
	@if [ -d plugin/cmd/octavo ]; then $(GO) build -o $(BIN)/octavo ./plugin/cmd/octavo; fi

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

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

bench-ui:
	$(GO) test -run '^$$' -bench . -benchmem ./plugin/ui/... ./plugin/live/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

clean:
	rm -rf $(BIN)
