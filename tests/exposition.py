"""Read a Prometheus text exposition into {(name, labels): value} for assertions."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, frozenset]


ORGANIZATION_LABELS = ("organization_id", "organization_name")


def samples(text: str | bytes, organization: bool = False) -> dict[Sample, float]:
    """Every sample by name and labels. The exposition of one organization: every sample must carry
    the same `organization_id` and `organization_name`, which are left out of the labels unless
    `organization` is set (several organizations' series, or tests of the labels themselves)."""
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    seen: set[tuple[str, str]] = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            if not organization:
                missing = [n for n in ORGANIZATION_LABELS if n not in labels]
                assert not missing, f"{sample.name} has no {', '.join(missing)}: {labels}"
                seen.add(tuple(labels.pop(n) for n in ORGANIZATION_LABELS))
            out[(sample.name, frozenset(labels.items()))] = sample.value
    assert len(seen) <= 1, f"one organization's exposition names several: {sorted(seen)}"
    return out


def value(parsed: dict[Sample, float], name: str, **labels: str) -> float | None:
    return parsed.get((name, frozenset(labels.items())))


def series(parsed: dict[Sample, float], name: str) -> dict[frozenset, float]:
    return {labels: v for (n, labels), v in parsed.items() if n == name}
