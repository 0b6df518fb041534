#!/bin/sh
# Entrypoint of the exporter's image.
#
# With an Admin API key (ANTHROPIC_ADMIN_API_KEY, or a file named by ANTHROPIC_ADMIN_API_KEY_FILE)
# it serves the real organization; without one it serves the built-in simulated organization
# (--demo), so that `docker compose up` shows populated dashboards before anyone has a key.
# The two keep separate stores, so simulated data never mixes with real data. With
# EXPORTER_CONFIG_FILE (several organizations, docs/organizations.md) that file says everything:
# the organizations, their key files and stores, or `demo: true`.
#
#   docker-entrypoint.sh [FLAGS]        serve /metrics
#   docker-entrypoint.sh backfill-once  write the last BACKFILL_DAYS days (default 60) into
#                                       Prometheus' data directory as TSDB blocks, once per
#                                       directory and mode (demo or real); 0 days: none
#   docker-entrypoint.sh SUBCOMMAND ... run `python -m exporter SUBCOMMAND ...` as given
set -eu

data_dir="${EXPORTER_DATA_DIR:-/var/lib/claude-code-analytics}"
prometheus_dir="${PROMETHEUS_DATA_DIR:-/prometheus}"

# Compose hands over a variable left empty in .env as an empty string: that is no key.
[ -n "${ANTHROPIC_ADMIN_API_KEY:-}" ] || unset ANTHROPIC_ADMIN_API_KEY
[ -n "${ANTHROPIC_ADMIN_API_KEY_FILE:-}" ] || unset ANTHROPIC_ADMIN_API_KEY_FILE

if [ -n "${EXPORTER_CONFIG_FILE:-}" ]; then
    mode=configured
elif [ -n "${ANTHROPIC_ADMIN_API_KEY:-}${ANTHROPIC_ADMIN_API_KEY_FILE:-}" ]; then
    mode=real
else
    mode=demo
fi

backfill_once() {
    if [ "${BACKFILL_DAYS:-60}" = 0 ]; then
        echo "entrypoint: BACKFILL_DAYS is 0: no backfill" >&2
        return 0
    fi
    marker="$prometheus_dir/.claude-code-analytics-backfilled-$mode"
    if [ -e "$marker" ]; then
        echo "entrypoint: the $mode history is already in $prometheus_dir" >&2
        return 0
    fi
    since=$(date -u -d "-${BACKFILL_DAYS:-60} days" +%F)
    store=$(mktemp -d)
    echo "entrypoint: writing the $mode history since $since into $prometheus_dir" >&2
    if [ "$mode" = demo ]; then
        set -- --demo "$@"
    elif [ "$mode" = configured ]; then
        set -- --config.file="$EXPORTER_CONFIG_FILE" "$@"
    fi
    python -m exporter backfill "$@" --since "$since" --output "$prometheus_dir" \
        --storage.path="$store/backfill.db"
    rm -rf "$store"
    touch "$marker"
}

case "${1:-}" in
    "" | -*) ;;
    backfill-once)
        shift
        backfill_once "$@"
        exit 0
        ;;
    *) exec python -m exporter "$@" ;;
esac

if [ "$mode" = configured ]; then
    echo "entrypoint: serving the organizations of $EXPORTER_CONFIG_FILE" >&2
    exec python -m exporter --config.file="$EXPORTER_CONFIG_FILE" "$@"
fi
if [ "$mode" = real ]; then
    echo "entrypoint: an Admin API key is set: serving the real organization" >&2
    exec python -m exporter --storage.path="$data_dir/claude-code-analytics.db" "$@"
fi
echo "entrypoint: no ANTHROPIC_ADMIN_API_KEY: serving the simulated organization (--demo)" >&2
exec python -m exporter --demo --storage.path="$data_dir/demo.db" "$@"
