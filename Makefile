# Conveniences; the scripts in hack/ are the source of truth.
.PHONY: build test bench demo

build:
	go build -o kubemon ./cmd/kubemon

test:
	hack/test.sh

bench:
	go test -run '^$$' -bench . -benchmem ./bench/ ./internal/scrape/ ./internal/sim/

demo:
	go run ./cmd/kubemon demo
