"""Prometheus exporter for the Claude Code Analytics Admin API."""

__version__ = "0.1.0"
