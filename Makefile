# qubes-claw — `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
# Fedora 41 (Qubes 4.3 dom0) ships golang 1.24.x; the product must build with the oldest 1.24.
GO_FLOOR ?= go1.24.0
BIN := $(CURDIR)/bin
GOFLAGS_BUILD := -trimpath -buildvcs=false
VERSION := $(shell cat version 2>/dev/null || echo 0.0.0)
LDFLAGS := -s -w -X github.com/qubes-claw/qubes-claw/pkg/version.Version=$(VERSION)
export QUBES_CLAW_BIN_DIR := $(BIN)

.PHONY: help build test test-unit test-e2e vet floor deps demo bench fuzz clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

build: ## build every binary into bin/
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

deps: ## install the Debian packages the tests need (idempotent, non-interactive)
	@.ci/deps

vet: ## go vet and gofmt check
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null | grep -v '^vendor/' || find . -name '*.go' -not -path './vendor/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

floor: ## prove the module builds with Fedora 41's Go ($(GO_FLOOR))
	GOTOOLCHAIN=$(GO_FLOOR) $(GO) version
	GOTOOLCHAIN=$(GO_FLOOR) CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o /dev/null ./...
	GOTOOLCHAIN=$(GO_FLOOR) $(GO) vet ./...

test: deps build vet floor ## everything CI runs: deps, build, vet, Go-floor build, unit + simulator E2E tests, packages, short fuzz
	$(GO) test -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory test-packages
	FUZZTIME=$${FUZZTIME:-3s} ./scripts/fuzz.sh

test-unit: build ## unit tests only (-short skips simulator E2E)
	$(GO) test -short -count=1 ./...

demo: build ## run the main job on a fresh simulated Qubes machine
	@./scripts/demo.sh

bench: build ## benchmarks; writes bench/report.md (medians and ratios)
	@./scripts/bench.sh

fuzz: ## run the fuzz targets longer than make test does
	@./scripts/fuzz.sh

clean: ## remove build outputs
	rm -rf $(BIN) dist

# Packaging lives in its own module (cmd/qubes-claw-dist) so nfpm never enters the product's go.mod.
.PHONY: packages test-packages
packages: ## build the RPM and Arch packages of the committed binaries into dist/ (nfpm)
	cd cmd/qubes-claw-dist && $(GO) run . -root $(CURDIR) -out $(CURDIR)/dist

test-packages: deps ## packaging tests: goldens, reproducibility, dnf/pacman/rpmbuild acceptance (root)
	cd cmd/qubes-claw-dist && $(GO) vet ./... && QUBES_CLAW_REQUIRE_TOOLS=1 $(GO) test -count=1 -timeout 10m ./...
