# The exporter's image. Docker Compose builds it (see docker-compose.yml and docs/compose.md);
# on its own: docker build -t claude-code-analytics-exporter .
FROM prom/prometheus:v2.55.1 AS prometheus

FROM python:3.11.11-slim-bookworm

# What registries and scanners read about the image. VERSION is pyproject.toml's version
# (tests/test_housekeeping.py checks that they agree); SOURCE_URL is where your build's code lives:
# docker build --build-arg SOURCE_URL=https://git.example.com/claude-code-analytics .
ARG VERSION=0.1.0
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="claude-code-analytics-exporter" \
      org.opencontainers.image.description="Prometheus exporter, Grafana dashboards and alerts for the Claude Code Analytics Admin API" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /build
COPY pyproject.toml README.md ./
COPY exporter ./exporter
# The exporter serves /metrics (and TLS, when its web config asks) with its own server.
RUN pip install . \
    && rm -rf /build \
    && groupadd --system --gid 10001 exporter \
    && useradd --system --uid 10001 --gid exporter --no-create-home --home-dir /nonexistent exporter \
    && mkdir -p /var/lib/claude-code-analytics /prometheus \
    && chown exporter:exporter /var/lib/claude-code-analytics \
    && chown 65534:65534 /prometheus

# `backfill` turns history into TSDB blocks with promtool, the same version as the stack's
# Prometheus. /prometheus above belongs to Prometheus' user, as in its image, so that Prometheus'
# data volume is writable for Prometheus whichever container mounts it first.
COPY --from=prometheus /bin/promtool /usr/local/bin/promtool
COPY provisioning/exporter/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh

WORKDIR /var/lib/claude-code-analytics
USER 10001:10001
# The SQLite store: a volume, so history survives a new container.
VOLUME ["/var/lib/claude-code-analytics"]
EXPOSE 9687

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9687/-/healthy', timeout=4)"]

ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["--web.listen-address=:9687"]
