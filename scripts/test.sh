#!/usr/bin/env bash
# Runs every test: the unit and e2e suites (Release), the same under AddressSanitizer and UBSan, and the
# fuzzers (manifest loader, CNI input, the controller's CNI socket messages) for a bounded time. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)
fuzz_seconds=${NFTPOL_FUZZ_SECONDS:-30}
cni_fuzz_seconds=${NFTPOL_CNI_FUZZ_SECONDS:-15}
work=$(mktemp -d /tmp/nftpol-test.XXXXXX)
trap 'jobs -p | xargs -r kill 2>/dev/null; rm -rf "$work"' EXIT  # and stop what runs in the background

echo "== [${SECONDS}s] format: clang-format --dry-run over the project's own code (.clang-format)"
if git rev-parse --git-dir >/dev/null 2>&1; then
  git ls-files -z '*.cpp' '*.h' | xargs -0 clang-format --dry-run --Werror
else
  find . \( -path './build*' -prune \) -o \( -name '*.cpp' -o -name '*.h' \) -print0 | xargs -0 clang-format --dry-run --Werror
fi || { echo "format: the files above differ from clang-format's output (run clang-format -i on them)" >&2; exit 1; }

echo "== [${SECONDS}s] build and test (Release)"
# The Catch2 unit tests run once, under the sanitizers below; the release build runs everything that touches
# the kernel or times something.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DNFTPOL_UNIT_TESTS=OFF >/dev/null
cmake --build build -j"$jobs"

echo "== [${SECONDS}s] clang-tidy (.clang-tidy) over the modules and programs, beside the release tests"
# The tests and benchmarks are left to the compiler's -Werror and the sanitizers: with Catch2 in every test file,
# tidying them took 100 s of a 250 s stage, for checks written for the shipped code. gcc's -Wno-restrict is
# unknown to clang. It runs at the lowest priority beside the release tests, which spend most of their time
# waiting for packets and processes: it takes the CPU they leave idle (the tests must hold under a busy loop at
# normal priority anyway, see ci-repeat.sh --hog).
(
  if git rev-parse --git-dir >/dev/null 2>&1; then git ls-files '*.cpp'; else find . -path './build*' -prune -o -name '*.cpp' -print; fi |
    grep -v '^\(\./\)\?\(tests\|bench\)/' |
    xargs -P"$jobs" -n4 nice -n 19 clang-tidy -p build --quiet --extra-arg=-Wno-unknown-warning-option >"$work/clang-tidy.log" 2>&1
) &
tidy=$!
echo "== [${SECONDS}s] ctest (Release)"
ctest --test-dir build --output-on-failure -j"$jobs" | tee "$work/ctest-release.log"
echo "== [${SECONDS}s] waiting for clang-tidy"
wait "$tidy" || { grep -E -A3 'error:' "$work/clang-tidy.log" >&2; echo "clang-tidy: findings above" >&2; exit 1; }

echo "== [${SECONDS}s] build and test with -fsanitize=address,undefined (clang), the fuzzers in the same build"
# One build serves the sanitizer tests and the fuzzers: clang at -O0 with line tables (clang compiles it in
# 250 s, gcc in 370), and the libraries the fuzzers drive at -O1 with libFuzzer's coverage (CMakeLists.txt).
# A second, separate fuzzer build cost 80 s of CI.
CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -gline-tables-only" -DNFTPOL_SANITIZE=ON -DNFTPOL_FUZZ=ON -DNFTPOL_BENCH=OFF >/dev/null
cmake --build build-asan -j"$jobs"
fuzz() {  # fuzz TARGET SECONDS MAX-LEN CORPUS: new inputs go to a scratch directory; the committed corpus is only read
  echo "== [${SECONDS}s] fuzz $1 for ${2}s (libFuzzer)"
  mkdir -p "$work/$1"
  LSAN_OPTIONS=suppressions="$PWD/tests/lsan.supp" ./build-asan/tests/"$1" -max_total_time="$2" -max_len="$3" -timeout=10 \
    -rss_limit_mb=2048 -artifact_prefix="$work/" -print_final_stats=1 "$work/$1" "$4" 2>"$work/$1.log" || {
    tail -50 "$work/$1.log"
    echo "fuzzer $1 found a failure; the input is in the log above" >&2
    exit 1
  }
  grep -E 'stat::number_of_executed_units|Done' "$work/$1.log" | tail -2
}
# The fuzzers run beside the sanitizer tests, which spend much of their time waiting for packets and processes
# (and hold under a busy loop anyway, see ci-repeat.sh --hog). At normal priority: a fuzzer runs for a time,
# not a number of inputs, and at the lowest the loader's ran a tenth of its inputs.
(
  fuzz loader_fuzz "$fuzz_seconds" 8192 tests/fuzz/corpus
) >"$work/fuzz-loader.out" 2>&1 &
loaderFuzz=$!
(
  fuzz cni_fuzz "$cni_fuzz_seconds" 4096 tests/fuzz/cni-corpus
  fuzz handoff_fuzz "$cni_fuzz_seconds" 17000 tests/fuzz/handoff-corpus
) >"$work/fuzz-cni.out" 2>&1 &
cniFuzz=$!
echo "== [${SECONDS}s] ctest (sanitizers), the fuzzers beside it"
ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions="$PWD/tests/lsan.supp" UBSAN_OPTIONS=print_stacktrace=1 ctest --test-dir build-asan --output-on-failure -j"$jobs" |
  tee "$work/ctest-asan.log"
echo "== [${SECONDS}s] waiting for the fuzzers"
for f in "$loaderFuzz:loader" "$cniFuzz:cni"; do
  wait "${f%%:*}" || { cat "$work/fuzz-${f#*:}.out" >&2; exit 1; }
  cat "$work/fuzz-${f#*:}.out"
done
# One closing line for the whole run: both ctest runs and the three fuzzers (each stage above already failed the
# script on any failure, so reaching here means none failed). A test that skipped itself (exit 77: no root, a
# missing tool) counts as skipped, not passed.
total=$(cat "$work/ctest-release.log" "$work/ctest-asan.log" | sed -n 's/.*tests failed out of \([0-9]*\)$/\1/p' |
  awk '{s += $1} END {print s + 0}')
skipped=$(cat "$work/ctest-release.log" "$work/ctest-asan.log" | grep -c '\*\*\*Skipped' || true)
echo "tests: $((total - skipped + 3)) passed, 0 failed, $skipped skipped (${SECONDS}s)"
