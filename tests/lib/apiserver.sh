# Shell helpers for tests against nftpol-test-apiserver. Source it after nftpol_pod_test (it uses `dir`, `pids`).

# nftpol_apiserver BINARY: starts the server on $dir (its CA and kubeconfigs land there) as the coproc SERVER.
nftpol_apiserver() {
  coproc SERVER { exec "$1" "$dir"; }
  local hello
  read -r -u "${SERVER[0]}" hello || { echo "FAIL: the test API server did not start"; exit 1; }
  pids+=($SERVER_PID)
}

# api COMMAND: a command to the server; prints its answer. Not in a pipeline or $(...) subshell of one: the
# coproc's descriptors stay with this shell.
api() {
  local reply
  { echo "$*" >&"${SERVER[1]}" && read -r -u "${SERVER[0]}" reply; } 2>/dev/null ||
    { echo "FAIL: the test API server is gone"; exit 1; }
  echo "$reply"
}

# put RESOURCE JSON: adds or replaces an object; a check that fails unless the server says ok.
put() { [ "$(api put "$@")" = ok ] || { failed=$((failed + 1)); echo "FAIL: put $1"; }; }
