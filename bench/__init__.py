"""Benchmarks of the exporter at organization scale: `python -m bench --help`.

Every figure is measured beside a baseline taken in the same run on the same data, because the
machines that run this are noisy. docs/performance.md explains the method and the results."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# tests/procs.py starts processes and tests/grafana_queries.py turns a panel into a Prometheus
# call; the benchmarks reuse both rather than keep copies.
if str(ROOT / "tests") not in sys.path:
    sys.path.append(str(ROOT / "tests"))
