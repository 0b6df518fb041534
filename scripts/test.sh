#!/usr/bin/env bash
# Run the whole test suite from a fresh clone: installs what the tests need, then runs them.
#   - Debian packages: prometheus (promtool), prometheus-alertmanager (amtool), docker-compose (config check)
#   - a virtualenv in .venv with the package and its test extra
# Arguments are passed to pytest (for example: scripts/test.sh -k poller).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
command -v docker-compose >/dev/null || missing+=(docker-compose)
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
