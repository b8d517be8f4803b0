#!/usr/bin/env bash
# Installs what is missing, builds, and runs nftpol on the bundled samples.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"

run() {
  echo
  echo "\$ nftpol $*"
  ./build/cli/nftpol "$@"
}
run matrix --cluster samples/cluster --port 8080 --protocol TCP
run can-reach --cluster samples/cluster shop/frontend-0 shop/api-0 --port 8080 --protocol TCP
run can-reach --cluster samples/cluster shop/frontend-0 shop/db-0 --port 5432 --protocol TCP || true
run can-reach --cluster samples/cluster shop/frontend-0 api.shop.svc.cluster.local --port 80 --protocol TCP
run matrix --cluster samples/cluster --port 5432 --what-if samples/what-if
