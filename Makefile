# Ignis developer entry points. `make test` is what CI runs (.ci/run).
GO        ?= go
FUZZTIME  ?= 5s
# Acceptance scripts from ACCEPTANCE_DIR run by `make test` (when the dir
# exists), through .ci/acceptance.sh: every check counts.
ACCEPTANCE_DIR ?= ../shared/acceptance
ACCEPTANCE     ?= control-plane.sh invoke.sh
# gVisor's runsc, pinned: built from the module proxy, static (CGO_ENABLED=0:
# the Sentry re-executes /proc/self/exe in an empty chroot, where a dynamic
# binary finds no ELF interpreter), into bin/ beside ignis, where the server
# looks first (Debian's runsc on PATH is the fallback).
RUNSC_VERSION = v0.0.0-20260905035102-160fafc42237
# package:FuzzTarget pairs; each runs alone for FUZZTIME.
FUZZ_TARGETS = \
	./internal/registry:FuzzValidateZip \
	./internal/registry:FuzzParseFunctionRef \
	./internal/worker:FuzzUnzip \
	./internal/frontend:FuzzDecodeRequests \
	./internal/frontend:FuzzParseAuthorization \
	./internal/frontend:FuzzMapURLResponse \
	./internal/frontend:FuzzFunctionURLTarget \
	./internal/runtimeapi:FuzzServeConn \
	./internal/agent:FuzzDecodeInvokeHeader

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
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$fn ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done

acceptance:
	ACCEPTANCE_DIR="$(ACCEPTANCE_DIR)" ACCEPTANCE="$(ACCEPTANCE)" bash .ci/acceptance.sh

# The README's quick start, word for word, in a fresh copy of the checkout.
quickstart:
	bash .ci/quickstart.sh

clean:
	rm -rf bin
