#!/bin/sh
# Entrypoint of the exporter's image.
#
# With an Admin API key (ANTHROPIC_ADMIN_API_KEY, or a file named by ANTHROPIC_ADMIN_API_KEY_FILE)
# it serves the real organization; without one it serves the built-in simulated organization
# (--demo), so that `docker compose up` shows populated dashboards before anyone has a key.
# The two keep separate stores, so simulated data never mixes with real data.
# A first argument that is not a flag is a subcommand (`grafana-access sync`) and runs as given.
set -eu

data_dir="${EXPORTER_DATA_DIR:-/var/lib/claude-code-analytics}"

# Compose hands over a variable left empty in .env as an empty string: that is no key.
[ -n "${ANTHROPIC_ADMIN_API_KEY:-}" ] || unset ANTHROPIC_ADMIN_API_KEY
[ -n "${ANTHROPIC_ADMIN_API_KEY_FILE:-}" ] || unset ANTHROPIC_ADMIN_API_KEY_FILE

case "${1:-}" in
    "" | -*) ;;
    *) exec python -m exporter "$@" ;;
esac

if [ -n "${ANTHROPIC_ADMIN_API_KEY:-}${ANTHROPIC_ADMIN_API_KEY_FILE:-}" ]; then
    echo "entrypoint: an Admin API key is set: serving the real organization" >&2
    exec python -m exporter --storage.path="$data_dir/claude-code-analytics.db" "$@"
fi
echo "entrypoint: no ANTHROPIC_ADMIN_API_KEY: serving the simulated organization (--demo)" >&2
exec python -m exporter --demo --storage.path="$data_dir/demo.db" "$@"
