"""Read a Prometheus text exposition into {(name, labels): value} for assertions."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, frozenset]


def samples(text: str | bytes) -> dict[Sample, float]:
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(parsed: dict[Sample, float], name: str, **labels: str) -> float | None:
    return parsed.get((name, frozenset(labels.items())))


def series(parsed: dict[Sample, float], name: str) -> dict[frozenset, float]:
    return {labels: v for (n, labels), v in parsed.items() if n == name}
