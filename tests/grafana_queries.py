"""Turn a dashboard panel's target into the Prometheus HTTP call Grafana 11 would make for it.

Follows the Prometheus datasource (its backend's pkg/tsdb/prometheus/models/query.go): `$__interval`
is the range divided by the data points, rounded the way Grafana rounds intervals, and at least the
panel's minimum interval (else the data source's scrape interval); the step is at least that and
at least range / 11000; range queries are aligned to the step in UTC; instant queries run at the end
of the time range; `$__rate_interval` is max(interval + step, 4 × step); multi-value and "All"
variables become a regex alternation of the escaped values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import requests

DEFAULT_MAX_DATA_POINTS = 1000
DEFAULT_SCRAPE_INTERVAL_S = 15

# Grafana's rangeutil.roundInterval: (upper bound exclusive, rounded interval), in milliseconds.
_ROUNDING_MS = (
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1_500, 1_000),
    (3_500, 2_000),
    (7_500, 5_000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (750_000, 600_000),
    (1_050_000, 900_000),
    (1_500_000, 1_200_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (32_400_000, 21_600_000),
    (86_400_000, 43_200_000),
    (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000),
    (3_628_800_000, 2_592_000_000),
)
_YEAR_MS = 31_536_000_000
_UNITS_S = (("y", 31_536_000), ("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))
# Grafana's gtime.FormatInterval writes no weeks.
_FORMAT_UNITS_S = tuple(unit for unit in _UNITS_S if unit[0] != "w")
_DURATION = re.compile(r"^(\d+)([smhdwy])$")
_SPECIAL_REGEX = re.compile(r"[$^*{}\[\]'+?.()|]")


@dataclass(frozen=True)
class TimeRange:
    """A dashboard time range in Unix seconds."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class PrometheusCall:
    """An HTTP GET to Prometheus: path and query parameters."""

    path: str
    params: dict[str, str]

    def run(self, base_url: str) -> list[dict]:
        """Send the call and return `data.result`; raise on an error status."""
        response = requests.get(base_url + self.path, params=self.params, timeout=30)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise RuntimeError(f"{self.params['query']!r}: {body.get('error', response.text)}")
        return body["data"]["result"]


def round_interval_ms(interval_ms: float) -> int:
    """Grafana's rounding of a computed interval to a readable one."""
    for bound, rounded in _ROUNDING_MS:
        if interval_ms < bound:
            return rounded
    return _YEAR_MS


def parse_duration(text: str) -> int:
    """Seconds of a Grafana/Prometheus duration such as '1d' or '30s'."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r}")
    return int(match.group(1)) * dict(_UNITS_S)[match.group(2)]


def format_duration(seconds: int) -> str:
    """Grafana's gtime.FormatInterval for whole seconds: the largest unit that fits."""
    for unit, size in _FORMAT_UNITS_S:
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return "0s"


def _calculate(time_range: TimeRange, points: int, min_s: float) -> float:
    """intervalv2.Calculate: range / data points, rounded, unless below the minimum."""
    raw_ms = time_range.seconds * 1000 / points
    return min_s if raw_ms < min_s * 1000 else round_interval_ms(raw_ms) / 1000


def interval_seconds(panel: dict, time_range: TimeRange, scrape_interval_s: int) -> int:
    """`$__interval`, as the frontend computes it from the panel's minimum interval."""
    minimum = panel.get("interval")
    min_s = parse_duration(minimum) if minimum else scrape_interval_s
    points = panel.get("maxDataPoints", DEFAULT_MAX_DATA_POINTS)
    return math.ceil(_calculate(time_range, points, min_s))


def step_seconds(panel: dict, target: dict, time_range: TimeRange, interval_s: int) -> int:
    """The backend's step: the target's min step or `$__interval`, never below range / 11000."""
    min_s = parse_duration(target["interval"]) if target.get("interval") else interval_s
    points = panel.get("maxDataPoints", DEFAULT_MAX_DATA_POINTS)
    safe_s = round_interval_ms(time_range.seconds * 1000 / 11_000) / 1000
    return math.ceil(max(_calculate(time_range, points, min_s), safe_s))


def rate_interval_seconds(interval_s: int, step_s: int) -> int:
    """`$__rate_interval` as the backend computes it, with the step as the scrape interval."""
    return max(interval_s + step_s, 4 * step_s)


def go_duration(seconds: int) -> str:
    """Go's time.Duration.String() for whole seconds, e.g. '4s', '1m0s', '2h0m0s'."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def regular_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\\\'")


def regex_escape(value: str) -> str:
    """Grafana's prometheusSpecialRegexEscape: regex metacharacters escaped for a PromQL string."""
    return _SPECIAL_REGEX.sub(lambda m: "\\\\" + m.group(0), value.replace("\\", "\\\\\\\\"))


ALL = "$__all"  # the value Grafana stores when "All" is selected


def variable_text(definition: dict, values: Sequence[str]) -> str:
    """A variable's selected values as Grafana writes them into a Prometheus query; "All" with a
    custom all value is that value, unescaped."""
    if list(values) == [ALL]:
        if "allValue" not in definition:
            raise ValueError(f"{definition['name']}: pass the options, it has no custom all value")
        return definition["allValue"]
    if not definition.get("multi") and not definition.get("includeAll"):
        return regular_escape(values[0])
    escaped = [regex_escape(v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def substitute(expr: str, replacements: Mapping[str, str]) -> str:
    """Replace `$name` and `${name}` by their text, longest names first (`$__range_s` first)."""
    for name in sorted(replacements, key=len, reverse=True):
        text = replacements[name]
        expr = expr.replace("${" + name + "}", text)
        expr = re.sub(r"\$" + re.escape(name) + r"(?![A-Za-z0-9_])", lambda _m, t=text: t, expr)
    return expr


def replacements(
    dashboard: dict,
    selected: Mapping[str, Sequence[str]],
    time_range: TimeRange,
    interval_s: int,
    step_s: int,
) -> dict[str, str]:
    """The text of every template variable and built-in macro for one query."""
    definitions = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
    texts = {name: variable_text(definitions[name], values) for name, values in selected.items()}
    range_s = round(time_range.seconds)
    texts.update(
        {
            "__range": f"{range_s}s",
            "__range_s": str(range_s),
            "__range_ms": str(round(time_range.seconds * 1000)),
            "__interval": format_duration(interval_s),
            "__interval_ms": str(interval_s * 1000),
            "__rate_interval": go_duration(rate_interval_seconds(interval_s, step_s)),
        }
    )
    return texts


def prometheus_call(
    dashboard: dict,
    panel: dict,
    target: dict,
    selected: Mapping[str, Sequence[str]],
    time_range: TimeRange,
    scrape_interval_s: int = DEFAULT_SCRAPE_INTERVAL_S,
) -> PrometheusCall:
    """The call Grafana makes for `target` of `panel` with the variables' `selected` values."""
    interval_s = interval_seconds(panel, time_range, scrape_interval_s)
    step_s = step_seconds(panel, target, time_range, interval_s)
    texts = replacements(dashboard, selected, time_range, interval_s, step_s)
    query = substitute(target["expr"], texts)
    if target.get("instant"):
        return PrometheusCall("/api/v1/query", {"query": query, "time": _number(time_range.end)})
    start = math.floor(time_range.start / step_s) * step_s
    end = math.floor(time_range.end / step_s) * step_s
    params = {"query": query, "start": str(start), "end": str(end), "step": str(step_s)}
    return PrometheusCall("/api/v1/query_range", params)


def _number(value: float) -> str:
    return f"{value:.3f}"


_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<metric>.+),\s*)?(?P<label>\w+)\)$")
_QUERY_RESULT = re.compile(r"^query_result\((?P<query>.+)\)$", re.S)


@dataclass(frozen=True)
class Option:
    """One option of a query variable: the value a query gets, the text the picker shows."""

    value: str
    text: str


def variable_options(
    base_url: str,
    variable: dict,
    time_range: TimeRange,
    selected: Mapping[str, Sequence[str]] | None = None,
    dashboard: dict | None = None,
) -> list[Option]:
    """The options of a `label_values(metric, label)` or `query_result(query)` query variable,
    fetched as Grafana does: with the `selected` values of the dashboard's other variables and the
    range in its query, and its regex applied (named groups `value` and `text` give each option's
    value and text)."""
    definitions = {v["name"]: v for v in (dashboard or {}).get("templating", {}).get("list", [])}
    texts = {
        name: variable_text(definitions[name], values) for name, values in (selected or {}).items()
    }
    range_s = round(time_range.seconds)
    texts.update({"__range": f"{range_s}s", "__range_s": str(range_s)})
    query = substitute(variable["query"], texts)
    if match := _QUERY_RESULT.match(query):
        lines = _query_result_lines(base_url, match.group("query"), time_range)
    elif match := _LABEL_VALUES.match(query):
        lines = _label_values(base_url, match.group("label"), match.group("metric"), time_range)
    else:
        raise ValueError(f"not a label_values() or query_result() query: {variable['query']!r}")
    options = [option(line, variable.get("regex", "")) for line in lines]
    unique = {option.value: option for option in options if option is not None}
    return sorted(unique.values(), key=lambda option: option.text)


def variable_values(
    base_url: str,
    variable: dict,
    time_range: TimeRange,
    selected: Mapping[str, Sequence[str]] | None = None,
    dashboard: dict | None = None,
) -> list[str]:
    """The values of a query variable's options (variable_options())."""
    options = variable_options(base_url, variable, time_range, selected, dashboard)
    return sorted(option.value for option in options)


def _label_values(
    base_url: str, label: str, metric: str | None, time_range: TimeRange
) -> list[str]:
    params: dict[str, str] = {"start": _number(time_range.start), "end": _number(time_range.end)}
    if metric:
        params["match[]"] = metric
    response = requests.get(f"{base_url}/api/v1/label/{label}/values", params=params, timeout=30)
    response.raise_for_status()
    return response.json()["data"]


def _query_result_lines(base_url: str, query: str, time_range: TimeRange) -> list[str]:
    """Grafana's text of each series of the instant query at the range's end:
    `name{label="value",...} value timestamp_ms`, labels in the order Prometheus gives them."""
    call = PrometheusCall("/api/v1/query", {"query": query, "time": _number(time_range.end)})
    lines = []
    for series in call.run(base_url):
        metric = dict(series["metric"])
        name = metric.pop("__name__", "")
        labels = ",".join(f'{k}="{v}"' for k, v in metric.items())
        stamp, value = series["value"]
        lines.append(f"{name}{{{labels}}} {value} {round(float(stamp) * 1000)}")
    return lines


def option(line: str, regex: str) -> Option | None:
    """Grafana's option of one result line under the variable's regex (a `/.../` JavaScript regex):
    none when it does not match; with named groups, their value and text, each the other's when
    missing; else the first group, or the line."""
    if not regex:
        return Option(line, line)
    body = regex[1 : regex.rindex("/")]
    match = re.search(body.replace("(?<", "(?P<"), line)
    if match is None:
        return None
    groups = match.groupdict()
    if groups:
        value, text = groups.get("value"), groups.get("text")
        return Option(value or text or "", text or value or "")
    found = match.group(1) if match.groups() else match.group(0)
    return Option(found, found)


def as_opened(base_url: str, dashboard: dict, time_range: TimeRange) -> dict[str, list[str]]:
    """What each query variable holds when Grafana opens the dashboard without a choice in its URL:
    its saved current value (All where it has one), else its first option (the variables are read
    in order, so a later one's options are those of the earlier ones' values)."""
    selected: dict[str, list[str]] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable["type"] != "query":
            continue
        if "current" in variable:
            selected[variable["name"]] = [variable["current"]["value"]]
            continue
        options = variable_options(base_url, variable, time_range, selected, dashboard)
        selected[variable["name"]] = [options[0].value] if options else []
    return selected
