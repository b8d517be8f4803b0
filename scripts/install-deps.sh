#!/usr/bin/env bash
# Installs the Debian packages nftpol needs that are missing (as root). Idempotent and quick when all are there.
set -euo pipefail
packages=(
  build-essential cmake pkg-config git
  clang libclang-rt-14-dev # the sanitizer build and libFuzzer (clang and its runtimes)
  clang-format # CI checks the project's own code is formatted
  clang-tidy   # and runs clang-tidy over it (.clang-tidy)
  libyaml-cpp-dev libfyaml-dev libre2-dev catch2 libcpprest-dev
  libnftnl-dev libmnl-dev nftables iproute2
  libnetfilter-conntrack-dev # deleting conntrack entries of flows a change denies
  curl # the controller tests read its HTTP endpoint
  jq   # the flow log tests read its JSON records
  containernetworking-plugins # host-local IPAM for nftpol-bridge, and the reference bridge plugin its tests compare with
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
