#!/usr/bin/env bash
# Every benchmark, medians throughout: the policy engine at 1k, 5k and 10k pods (--large adds 100k pods / 20k
# policies), then as root the enforcement layer (in a network namespace of its own) and the data path.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo; echo "== policy engine"
./build/bench/nftpol_bench "$@"
if [ "$(id -u)" != 0 ]; then echo "(enforcement and data path benchmarks need root)"; exit 0; fi
echo; echo "== enforcement (10k pods, 2k policies; a private network namespace)"
unshare --net ./build/bench/nftpol_bench_nft
echo; echo "== service sync (1k services, 10k endpoints; a private network namespace)"
unshare --net ./build/bench/nftpol_bench_services
echo; echo "== data path"
bench/datapath.sh build
echo; echo "== protected from the first packet: the window, ADD with and without the handoff, a burst (bench/handoff.sh)"
bench/handoff.sh build
echo; echo "== the flow log: its cost on connections and throughput, and a denied packet to its record (bench/flowlog.sh)"
bench/flowlog.sh build
echo; echo "== the controller on the Kubernetes API under load (10k pods, 2k policies, 1k changes/s for 30 s)"
bench/api_load.sh build
