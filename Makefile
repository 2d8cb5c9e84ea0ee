# sessiond: the two commands are `make run` and `make test`.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= 2
CMAKE_FLAGS ?=

.PHONY: all deps build build-asan run test bench format tidy clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

$(ASAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSESSIOND_SANITIZE=ON \
	  -DSESSIOND_BENCH=OFF $(CMAKE_FLAGS)

build-asan: deps $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j$(JOBS)

# Starts sessiond on its embedded defaults (127.0.0.1:8080, data in ./sessiond-data). Builds only
# the server, not the tests.
run: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS) --target sessiond
	./$(BUILD)/sessiond

test: deps
	@bash scripts/test.sh

bench: build
	@bash bench/run.sh
	@bash bench/outbox.sh

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# clang-tidy over every source file (.clang-tidy: bugprone, performance, some modernize, naming).
tidy: build
	@status=0; for f in $$(git ls-files 'src/*.cpp'); do \
	  clang-tidy -p $(BUILD) --quiet --extra-arg=-Wno-unknown-warning-option "$$f" 2>/dev/null || status=1; \
	done; exit $$status
