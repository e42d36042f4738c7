# Ignis developer entry points. `make test` is what CI runs (.ci/run).
GO        ?= go
# Acceptance scripts from ACCEPTANCE_DIR run by `make test` (when the dir
# exists), through .ci/acceptance.sh: every check counts.
ACCEPTANCE_DIR ?= ../shared/acceptance
ACCEPTANCE     ?= control-plane.sh invoke.sh
# gVisor's runsc, pinned: built from the module proxy, static (CGO_ENABLED=0:
# the Sentry re-executes /proc/self/exe in an empty chroot, where a dynamic
# binary finds no ELF interpreter), into bin/ beside ignis, where the server
# looks first (Debian's runsc on PATH is the fallback).
RUNSC_VERSION = v0.0.0-20260905035102-160fafc42237
# package:FuzzTarget:executions, each run alone. Budgets are counts, not
# durations: a -fuzztime duration races Go's fuzz coordinator against its
# own deadline (go.dev/issue/75804, fixed in Go 1.27) and fails a loaded run
# with a bare "context deadline exceeded". Each count is about 5 s here;
# FuzzUnzip unpacks onto disk, so its executions are slower.
# Minimizing an input that found new coverage is capped by count too: the
# default, 60 s, would spend the whole budget minimizing.
FUZZ_TARGETS = \
	./internal/registry:FuzzValidateZip:20000 \
	./internal/registry:FuzzParseFunctionRef:20000 \
	./internal/worker:FuzzUnzip:3000 \
	./internal/frontend:FuzzDecodeRequests:20000 \
	./internal/frontend:FuzzParseAuthorization:20000 \
	./internal/frontend:FuzzMapURLResponse:20000 \
	./internal/frontend:FuzzFunctionURLTarget:20000 \
	./internal/runtimeapi:FuzzServeConn:50000 \
	./internal/agent:FuzzDecodeInvokeHeader:20000
FUZZMINIMIZE ?= 200x

.PHONY: build runsc run test deps tidy vet unit fuzz acceptance quickstart clean

build: runsc
	@mkdir -p bin
	$(GO) build -o bin/ignis ./cmd/ignis
	@if [ -d cmd/ignis-agent ] && ls cmd/ignis-agent/*.go >/dev/null 2>&1; then \
		echo "CGO_ENABLED=0 $(GO) build -o bin/ignis-agent ./cmd/ignis-agent"; \
		CGO_ENABLED=0 $(GO) build -o bin/ignis-agent ./cmd/ignis-agent; \
	else echo "cmd/ignis-agent not present yet: skipping bin/ignis-agent"; fi
	CGO_ENABLED=0 $(GO) build -o bin/ignis-jail-init ./cmd/ignis-jail-init

# bin/runsc, once per RUNSC_VERSION (the go build cache makes a rebuild
# quick; the first takes 2-3 minutes on 2 CPUs).
runsc:
	@mkdir -p bin
	@if [ "$$(cat bin/.runsc-version 2>/dev/null)" != "$(RUNSC_VERSION)" ] || [ ! -x bin/runsc ]; then \
		echo "CGO_ENABLED=0 GOBIN=$(CURDIR)/bin $(GO) install gvisor.dev/gvisor/runsc@$(RUNSC_VERSION)"; \
		CGO_ENABLED=0 GOBIN=$(CURDIR)/bin $(GO) install gvisor.dev/gvisor/runsc@$(RUNSC_VERSION) && \
		echo "$(RUNSC_VERSION)" > bin/.runsc-version; \
	fi

run: build
	./bin/ignis server

test: deps tidy vet unit fuzz acceptance quickstart
	@echo "make test: all steps passed"

# Install what the tests need on a fresh Debian 12 machine (as root).
# /usr/bin/aws is Debian's AWS CLI v2: the acceptance scripts use v2-only
# options, and the machine's pip CLI v1 (`aws` on PATH) does not count.
deps:
	@missing=""; \
	for c in /usr/bin/aws:awscli runsc:runsc jq:jq zip:zip curl:curl; do \
		command -v $${c%%:*} >/dev/null 2>&1 || missing="$$missing $${c##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else echo "missing:$$missing (run as root to install them)"; fi; \
	fi

# go.mod and go.sum say exactly what the code imports: a diff fails.
tidy:
	$(GO) mod tidy -diff

vet:
	$(GO) vet ./...

# The gvisor tests run the pinned runsc (and Debian's too, when installed).
unit: runsc
	IGNIS_RUNSC=$(CURDIR)/bin/runsc $(GO) test -count=1 -timeout 25m ./...

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; n=$${rest#*:}; \
		echo "fuzz $$fn ($$pkg, $$n executions)"; \
		$(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$${n}x -fuzzminimizetime=$(FUZZMINIMIZE) $$pkg; \
	done

acceptance:
	ACCEPTANCE_DIR="$(ACCEPTANCE_DIR)" ACCEPTANCE="$(ACCEPTANCE)" bash .ci/acceptance.sh

# The README's quick start, word for word, in a fresh copy of the checkout.
quickstart:
	bash .ci/quickstart.sh

clean:
	rm -rf bin
