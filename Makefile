# Conveniences; the scripts in hack/ are the source of truth.
.PHONY: build test e2e bench demo cluster-up cluster-down

build:
	go build -o kubemon ./cmd/kubemon

test:
	hack/test.sh

# End-to-end tests: the simulator spine and the real cluster (as root).
e2e:
	PATH="$$PATH:$$(hack/cluster/build.sh)" go test -count=1 -v ./test/e2e/

cluster-up:
	KUBEMON=1 hack/cluster/up.sh /tmp/kubemon-cluster

cluster-down:
	hack/cluster/down.sh /tmp/kubemon-cluster

bench:
	go test -run '^$$' -bench . -benchmem ./bench/ ./internal/scrape/ ./internal/sim/

demo:
	go run ./cmd/kubemon demo
