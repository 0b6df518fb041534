"""The exporter process's own series: `process_*` (CPU time, memory, open files, start time) and
`python_*` (the interpreter's version and its garbage collector), from client_python's collectors,
as node_exporter serves its `process_*` and `go_*` series.

They are read when a scrape asks, not after a poll, as they describe the process, and at most once
a second: reading and rendering them through client_python takes about 0.3 ms, more than the rest
of a gzipped scrape at 10,000 members (0.2 ms), so a crowd of scrapers shares one rendering
(docs/performance.md). With several organizations they are served once, on a target of their own
(docs/organizations.md): every organization's target is the same process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from .collector import EOF_LINE, render
from .exposition import Exposition

# The oldest rendering a scrape is given, in seconds.
MAX_AGE = 1.0


class RuntimeMetrics:
    """The process and Python collectors, in a registry of their own."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self._registry)
        PlatformCollector(registry=self._registry)
        GCCollector(registry=self._registry)
        self._clock = clock
        self._lock = threading.Lock()
        self._rendered: dict[tuple[tuple[tuple[str, str], ...], bool], tuple[float, Exposition]]
        self._rendered = {}

    def part(self, labels: Mapping[str, str], openmetrics: bool) -> Exposition:
        """Their exposition, with `labels` on every series, to end a scrape's answer: in
        OpenMetrics followed by the `# EOF` that ends the whole answer."""
        key = (tuple(sorted(labels.items())), openmetrics)
        now = self._clock()
        with self._lock:
            rendered = self._rendered.get(key)
            if rendered is not None and now - rendered[0] < MAX_AGE:
                return rendered[1]
            text = render(self._registry.collect(), labels, openmetrics)
            part = Exposition.small(text + EOF_LINE if openmetrics else text)
            self._rendered[key] = (now, part)
            return part
