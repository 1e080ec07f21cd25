# Reprise: the two commands are `make run` and `make test`.
#   make build            configure + build (build/, or build-$(SAN)/ with SAN=address|thread)
#   make run              build and start the server with the demo on http://127.0.0.1:8080
#   make test             build and run every test (SAN=address for the sanitizer build)
#   make bench            build and run the benchmarks (prints ratios against other tools)
#   make install          install binaries, units, configs under PREFIX (default /usr/local; DESTDIR honoured)
#   make package          Debian packages reprise-server, reprise-agent, reprise-cli into build-package/
#   make fuzz             build libFuzzer targets with clang into build-fuzz/ and run each
#   make fuzz-check       the same targets, each only replaying its seeds (CI)
#   make format           clang-format every source file
#   make clean            remove build directories

SAN ?=
BUILD_DIR := build$(if $(SAN),-$(SAN),)
JOBS ?= $(shell nproc)
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")
RUN_HTTP ?= 127.0.0.1:8080
RUN_AGENT_PORT ?= 8081

PREFIX ?= /usr/local

.PHONY: deps deps-test build run test bench fuzz fuzz-build fuzz-check format clean install package

deps:
	@scripts/install-deps.sh

# Tests also drive a real headless Chromium.
deps-test:
	@scripts/install-deps.sh --browser

$(BUILD_DIR)/.configured: CMakeLists.txt
	@cmake -S . -B $(BUILD_DIR) $(GENERATOR) -DREPRISE_SANITIZER=$(SAN) >/dev/null
	@touch $@

build: deps $(BUILD_DIR)/.configured
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/bin/reprise-server --data ./var --http $(RUN_HTTP) --agent-port $(RUN_AGENT_PORT) --local-agent --demo

test: deps-test build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

bench: build
	@scripts/bench.sh $(BUILD_DIR)

install: build
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target reprise-server reprise-agent reprise
	@cmake --install $(BUILD_DIR)

# Packages install under /usr with configs in /etc/reprise: a build of the
# binaries alone, configured for that prefix.
package: deps
	@scripts/install-deps.sh --package
	@cmake -S . -B build-package $(GENERATOR) -DCMAKE_INSTALL_PREFIX=/usr -DREPRISE_BUILD_TESTS=OFF >/dev/null
	@cmake --build build-package -j $(JOBS)
	@cd build-package && cpack -G DEB
	@ls build-package/*.deb

fuzz: fuzz-build
	@scripts/fuzz.sh build-fuzz

fuzz-build:
	@scripts/install-deps.sh --fuzz
	@CXX=clang++ cmake -S . -B build-fuzz $(GENERATOR) -DREPRISE_FUZZ=ON -DREPRISE_SANITIZER=address >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target fuzz_targets

# The fuzz targets compile with clang and pass their seeds, once each.
fuzz-check: fuzz-build
	@FUZZ_RUNS=0 scripts/fuzz.sh build-fuzz

format:
	@scripts/install-deps.sh --format
	@git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	rm -rf build build-*
