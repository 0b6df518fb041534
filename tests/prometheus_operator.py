"""The Prometheus Operator's ServiceMonitor and PrometheusRule (monitoring.coreos.com/v1), as its
API reference documents them, and a check of an object against them.

Every field of the reference is listed, so a misspelt or misplaced field is reported; the types,
patterns and enumerations are those of the fields these manifests use (the others accept any
value). Written from the reference of prometheus-operator v0.93.0
(Documentation/api-reference/api.md and the CRDs generated from it)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The reference's Duration: "^(0|(([0-9]+)y)?(([0-9]+)w)?...(([0-9]+)ms)?)$".
DURATION = re.compile(r"0|(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?")


@dataclass(frozen=True)
class Obj:
    """An object: every documented field with what its value must be, and the required ones."""

    fields: dict[str, Any]
    required: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class MapOf:
    value: Any


@dataclass(frozen=True)
class OneOf:
    values: frozenset[str]


ANY = object()


def duration(value: Any) -> str | None:
    ok = isinstance(value, str) and value and DURATION.fullmatch(value)
    return None if ok else f"{value!r} is not a duration such as 30s or 1m"


def int_or_string(value: Any) -> str | None:
    ok = isinstance(value, int | str) and not isinstance(value, bool)
    return None if ok else f"{value!r} is neither an integer nor a string"


SECRET_KEY = Obj({"key": str, "name": str, "optional": bool}, frozenset({"key"}))
LABEL_SELECTOR = Obj(
    {
        "matchLabels": MapOf(str),
        "matchExpressions": ListOf(
            Obj(
                {"key": str, "operator": str, "values": ListOf(str)}, frozenset({"key", "operator"})
            )
        ),
    }
)
RELABEL_ACTIONS = ["replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep"]
RELABEL_ACTIONS += ["lowercase", "uppercase", "keepequal", "dropequal"]
RELABEL_CONFIG = Obj(
    {
        "action": OneOf(frozenset(RELABEL_ACTIONS + [a.capitalize() for a in RELABEL_ACTIONS])),
        "modulus": int,
        "regex": str,
        "replacement": str,
        "separator": str,
        "sourceLabels": ListOf(str),
        "targetLabel": str,
    }
)
ENDPOINT_FIELDS = [
    "basicAuth", "bearerTokenFile", "bearerTokenSecret", "enableHttp2", "filterRunning",
    "followRedirects", "honorLabels", "honorTimestamps", "noProxy", "oauth2", "proxyConnectHeader",
    "proxyFromEnvironment", "proxyUrl", "targetPort", "tlsConfig", "trackTimestampsStaleness",
]  # fmt: skip
ENDPOINT = Obj(
    {
        **dict.fromkeys(ENDPOINT_FIELDS, ANY),
        "port": str,
        "targetPort": int_or_string,
        "path": str,
        "scheme": OneOf(frozenset({"http", "https", "HTTP", "HTTPS"})),
        "params": MapOf(ListOf(str)),
        "interval": duration,
        "scrapeTimeout": duration,
        "authorization": Obj({"type": str, "credentials": SECRET_KEY}),
        "relabelings": ListOf(RELABEL_CONFIG),
        "metricRelabelings": ListOf(RELABEL_CONFIG),
    }
)
SERVICE_MONITOR_FIELDS = [
    "attachMetadata", "bodySizeLimit", "convertClassicHistogramsToNHCB", "fallbackScrapeProtocol",
    "keepDroppedTargets", "labelLimit", "labelNameLengthLimit", "labelValueLengthLimit",
    "nativeHistogramBucketLimit", "nativeHistogramMinBucketFactor", "podTargetLabels",
    "sampleLimit", "scrapeClass", "scrapeClassicHistograms", "scrapeNativeHistograms",
    "scrapeProtocols", "selectorMechanism", "serviceDiscoveryRole", "targetLabels", "targetLimit",
]  # fmt: skip
SERVICE_MONITOR_SPEC = Obj(
    {
        **dict.fromkeys(SERVICE_MONITOR_FIELDS, ANY),
        "jobLabel": str,
        "endpoints": ListOf(ENDPOINT),
        "selector": LABEL_SELECTOR,
        "namespaceSelector": Obj({"any": bool, "matchNames": ListOf(str)}),
    },
    frozenset({"endpoints", "selector"}),
)
RULE = Obj(
    {
        "alert": str,
        "record": str,
        "expr": int_or_string,
        "for": duration,
        "keep_firing_for": duration,
        "labels": MapOf(str),
        "annotations": MapOf(str),
    },
    frozenset({"expr"}),
)
RULE_GROUP = Obj(
    {
        "name": str,
        "interval": duration,
        "query_offset": duration,
        "limit": int,
        "labels": MapOf(str),
        "partial_response_strategy": str,
        "rules": ListOf(RULE),
    },
    frozenset({"name"}),
)
PROMETHEUS_RULE_SPEC = Obj({"groups": ListOf(RULE_GROUP)})
SPECS = {"ServiceMonitor": SERVICE_MONITOR_SPEC, "PrometheusRule": PROMETHEUS_RULE_SPEC}
METADATA = Obj(
    {"name": str, "namespace": str, "labels": MapOf(str), "annotations": MapOf(str)},
    frozenset({"name"}),
)


def problems(obj: dict) -> list[str]:
    """What in `obj` the reference does not allow, each as `path: reason`; empty when valid."""
    kind = obj.get("kind")
    if obj.get("apiVersion") != "monitoring.coreos.com/v1" or kind not in SPECS:
        return [f"not a monitoring.coreos.com/v1 ServiceMonitor or PrometheusRule: {kind}"]
    top = Obj(
        {"apiVersion": str, "kind": str, "metadata": METADATA, "spec": SPECS[kind]},
        frozenset({"metadata", "spec"}),
    )
    out = _check(obj, top, kind)
    if kind == "PrometheusRule":
        out += _rules_problems(obj["spec"].get("groups", []), kind)
    return out


def _rules_problems(groups: list[dict], path: str) -> list[str]:
    """The rules' own constraints: groups named once (a list-map keyed by name), and each rule
    either an alert or a recording."""
    out = []
    names = [group.get("name") for group in groups]
    out += [f"{path}.spec.groups: group {n!r} twice" for n in set(names) if names.count(n) > 1]
    for g, group in enumerate(groups):
        for r, rule in enumerate(group.get("rules", [])):
            if ("alert" in rule) == ("record" in rule):
                out.append(f"{path}.spec.groups[{g}].rules[{r}]: needs alert or record, not both")
    return out


def _check(value: Any, schema: Any, path: str) -> list[str]:
    if schema is ANY:
        return []
    if isinstance(schema, Obj):
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not an object"]
        out = [f"{path}.{key}: not a documented field" for key in value if key not in schema.fields]
        out += [f"{path}.{key}: required" for key in sorted(schema.required - value.keys())]
        for key, item in value.items():
            if key in schema.fields:
                out += _check(item, schema.fields[key], f"{path}.{key}")
        return out
    if isinstance(schema, ListOf):
        if not isinstance(value, list):
            return [f"{path}: {value!r} is not a list"]
        return [
            p for i, item in enumerate(value) for p in _check(item, schema.item, f"{path}[{i}]")
        ]
    if isinstance(schema, MapOf):
        if not isinstance(value, dict):
            return [f"{path}: {value!r} is not a map"]
        return [p for k, item in value.items() for p in _check(item, schema.value, f"{path}.{k}")]
    if isinstance(schema, OneOf):
        return [] if value in schema.values else [f"{path}: {value!r} is not one of the allowed"]
    if isinstance(schema, type):
        ok = isinstance(value, schema) and not (schema is int and isinstance(value, bool))
        return [] if ok else [f"{path}: {value!r} is not a {schema.__name__}"]
    check: Callable[[Any], str | None] = schema
    reason = check(value)
    return [f"{path}: {reason}"] if reason else []
