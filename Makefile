# wisp — see README.md. Everything a fresh machine needs is installed here.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN := bin

# Packages with concurrent code run their tests under the race detector.
RACE_PKGS := ./activator/... ./autoscaler/... ./controller/... ./runtime/... ./internal/... ./functions/oci/... ./triggers/...

.PHONY: all build examples run test test-unit test-e2e bench lint fmt tools clean generate k8s-bin image

# The Kubernetes binaries (etcd, kube-apiserver, kubelet, ...) that the
# Kubernetes-mode tests run, built from the Go module proxy once and cached
# here (about 7 minutes and 2 GB the first time).
K8S_DIR ?= $(HOME)/.cache/wisp/k8s
export WISP_K8S_BIN := $(K8S_DIR)/bin
CONTROLLER_GEN_VERSION := v0.23.0
CONTROLLER_GEN := $(HOME)/.cache/wisp/tools/controller-gen-$(CONTROLLER_GEN_VERSION)

all: build

build: examples
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/wisp ./cmd/wisp

## examples: the example functions — Wasm (Go reactor, Go/C/WAT wagi) and a process.
examples:
	$(GO) build -o $(BIN)/hello-process ./functions/examples/hello-process
	GO=$(GO) ./functions/examples/build.sh $(BIN)

## run: build, start a node with the example function deployed, print how to call it.
run: build
	./scripts/run.sh

## test: every test — unit, race, end-to-end (Kubernetes mode included).
test: tools k8s-bin lint examples
	$(GO) test -count=1 -race $(RACE_PKGS)
	$(GO) test -count=1 $(shell $(GO) list ./... | grep -v -e /activator -e /autoscaler -e /controller -e /runtime -e /internal -e /functions/oci -e /triggers -e /test/e2e)
	$(GO) test -count=1 -timeout 15m ./test/e2e/...

test-e2e:
	$(GO) test -count=1 -v -timeout 15m ./test/e2e/...

## bench: every benchmark, 5 runs each, for benchstat.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./... | tee bench.out

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

GOBIN := $(shell $(GO) env GOPATH)/bin
REGISTRY_VERSION := v3.1.2

## tools: what the tests need beyond Go, installed when missing (apt-get as root).
tools:
	@command -v runc >/dev/null || { echo "installing runc for the container runtime tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc >/dev/null; }
	@command -v $(GO) >/dev/null || { echo "Go 1.26 is required: https://go.dev/dl/"; exit 1; }
	@test -x $(GOBIN)/registry || { echo "installing the OCI registry (distribution $(REGISTRY_VERSION)) for the tests"; \
		$(GO) install github.com/distribution/distribution/v3/cmd/registry@$(REGISTRY_VERSION); }

## generate: the CRDs of config/crd from the types in api/.
generate: $(CONTROLLER_GEN)
	$(CONTROLLER_GEN) crd:allowDangerousTypes=true,maxDescLen=400 paths=./api/... output:crd:artifacts:config=config/crd

$(CONTROLLER_GEN):
	mkdir -p $(dir $@)
	GOBIN=$(dir $@) $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(dir $@)controller-gen $@

## image: build the node's container image and push it, without a Docker daemon:
##   make image IMAGE=REGISTRY/REPO:TAG [BASE=REF]   (prints REGISTRY/REPO@sha256:...)
image:
	@test -n "$(IMAGE)" || { echo "make image IMAGE=REGISTRY/REPO:TAG [BASE=REF]"; exit 2; }
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o $(BIN)/linux/wisp ./cmd/wisp
	@$(GO) run ./scripts/image --binary $(BIN)/linux/wisp --image $(IMAGE) --version $(VERSION) $(if $(BASE),--base $(BASE))

## k8s-bin: build the Kubernetes binaries into $(K8S_DIR)/bin when missing.
k8s-bin:
	@K8S_DIR=$(K8S_DIR) ./scripts/k8s/cluster.sh build

clean:
	rm -rf $(BIN) bench.out
