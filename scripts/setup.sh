#!/usr/bin/env bash
# Installs what is missing (Debian bookworm, as root), builds, and runs nftpol on the bundled samples.
# Idempotent: packages already present are not reinstalled; the build is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config git
  clang libclang-rt-14-dev # libFuzzer and the sanitizer runtime for the fuzz target
  libyaml-cpp-dev libre2-dev catch2 libcpprest-dev
  libnftnl-dev libmnl-dev nftables iproute2
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"

echo
echo "== nftpol matrix --cluster samples/cluster --port 80 --protocol TCP"
./build/cli/nftpol matrix --cluster samples/cluster --port 80 --protocol TCP
echo
echo "== nftpol can-reach --cluster samples/cluster shop/frontend-0 shop/api-0 --port 8080 --protocol TCP"
./build/cli/nftpol can-reach --cluster samples/cluster shop/frontend-0 shop/api-0 --port 8080 --protocol TCP || true
