"""The parser fuzzed with hypothesis: whatever JSON the API sends, parsing a page either refuses
the page with PageError or returns records that satisfy every invariant the store relies on."""

from __future__ import annotations

import contextlib
import copy
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import load_fixture
from exporter.parse import (
    MAX_COST_CENTS,
    MAX_COUNT,
    MICROCENTS_PER_CENT,
    TOKEN_TYPES,
    PageError,
    RecordError,
    UsageRecord,
    _plain_record,
    parse_usage_page,
    parse_usage_record,
    parse_users_page,
)

DAY = date(2026, 1, 15)
VALID_PAGE = load_fixture("api/usage_2026-01-15_page1.json")
REASONS = {
    "not_an_object",
    "missing_field",
    "wrong_type",
    "bad_date",
    "wrong_day",
    "unknown_actor_type",
    "negative_value",
    "implausible_value",
    "unsupported_currency",
}
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["2026-01-15", "2026-01-15T00:00:00Z", "user_actor", "api_actor", "USD"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def paths(node: object, prefix: tuple = ()) -> list[tuple]:
    """Every key path inside a JSON value."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += paths(child, (*prefix, index))
    return found


@st.composite
def damaged_records(draw: st.DrawFn) -> dict:
    """A documented record with a few of its fields replaced by anything or removed."""
    record = copy.deepcopy(draw(st.sampled_from(VALID_PAGE["data"])))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        path = draw(st.sampled_from(paths(record)))
        parent = record
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
        if not paths(record):
            break
    return record


EDGE_VALUES = (-1, 0, MAX_COUNT, MAX_COUNT + 1, MAX_COST_CENTS + 1, True, 1.5, "3", None, [], {})


@st.composite
def edge_records(draw: st.DrawFn) -> dict:
    """A documented record with one of its values replaced by a value at or past an edge."""
    record = copy.deepcopy(draw(st.sampled_from(VALID_PAGE["data"])))
    leaves = [p for p in paths(record) if not isinstance(_at(record, p), dict | list)]
    path = draw(st.sampled_from(leaves))
    _at(record, path[:-1])[path[-1]] = draw(st.sampled_from(EDGE_VALUES))
    return record


def _at(node: object, path: tuple) -> object:
    for key in path:
        node = node[key]  # type: ignore[index]
    return node


pages = st.fixed_dictionaries(
    {"data": st.lists(st.one_of(damaged_records(), json_values), max_size=5)},
    optional={
        "has_more": st.one_of(st.booleans(), json_values),
        "next_page": st.one_of(st.text(max_size=10), st.none(), json_values),
        "extra": json_values,
    },
)


def check_invariants(record: UsageRecord) -> None:
    assert record.day == DAY
    assert record.actor_type in ("user", "api_key")
    assert isinstance(record.actor, str) and record.actor
    assert isinstance(record.terminal_type, str)
    for count in (
        record.sessions,
        record.lines_added,
        record.lines_removed,
        record.commits,
        record.pull_requests,
    ):
        assert type(count) is int and 0 <= count <= MAX_COUNT
    for tool, (accepted, rejected) in record.tools.items():
        assert isinstance(tool, str)
        assert type(accepted) is int and type(rejected) is int
        assert 0 <= accepted <= MAX_COUNT and 0 <= rejected <= MAX_COUNT
    for model in record.models:
        assert isinstance(model.model, str) and model.model
        assert tuple(model.tokens) == TOKEN_TYPES
        assert all(type(n) is int and 0 <= n <= MAX_COUNT for n in model.tokens.values())
        assert type(model.cost_microcents) is int
        assert 0 <= model.cost_microcents <= MAX_COST_CENTS * MICROCENTS_PER_CENT


@FUZZ
@given(pages)
def test_a_usage_page_is_refused_whole_or_parsed_into_records_that_keep_the_invariants(page):
    try:
        parsed = parse_usage_page(page, DAY)
    except PageError:
        return
    assert len(parsed.records) + len(parsed.rejected) == len(page["data"])
    for record in parsed.records:
        check_invariants(record)
    assert {error.reason for error, _ in parsed.rejected} <= REASONS
    assert parsed.has_more is False or parsed.next_page


@FUZZ
@given(json_values)
def test_any_json_value_as_a_usage_page_raises_nothing_but_page_error(payload):
    with contextlib.suppress(PageError):
        parse_usage_page(payload, DAY)


@FUZZ
@given(st.one_of(json_values, pages))
def test_any_json_value_as_a_users_page_raises_nothing_but_page_error(payload):
    try:
        parsed = parse_users_page(payload)
    except PageError:
        return
    assert all(isinstance(member.email, str) for member in parsed.members)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(damaged_records(), edge_records(), json_values))
def test_the_quick_path_parses_a_record_as_the_checked_path_does_or_leaves_it(raw):
    """parse_usage_page tries `_plain_record` first: whatever it returns must be what the checked
    parse_usage_record returns, so the quick path changes no figure and rejects nothing. Many
    examples, because each edge (a count past MAX_COUNT, a cost past MAX_COST_CENTS, a bool) sits
    in one field of dozens."""
    quick = _plain_record(raw, DAY, (DAY.isoformat(), f"{DAY.isoformat()}T00:00:00Z"))
    if quick is None:
        return
    try:
        checked = parse_usage_record(raw, DAY)
    except RecordError as exc:
        raise AssertionError(f"the quick path took what the checked path rejects: {exc}") from exc
    assert quick == checked


def test_the_quick_path_takes_the_documented_records():
    dates = (DAY.isoformat(), f"{DAY.isoformat()}T00:00:00Z")
    assert all(_plain_record(raw, DAY, dates) is not None for raw in VALID_PAGE["data"])


def test_the_fuzzer_reaches_accepted_and_rejected_records():
    """The damaged-record strategy is not so damaging that nothing is ever accepted."""
    found = {"accepted": 0, "rejected": 0}

    @settings(max_examples=200, deadline=None)
    @given(damaged_records())
    def tally(record):
        parsed = parse_usage_page({"data": [record]}, DAY)
        found["accepted" if parsed.records else "rejected"] += 1

    tally()
    assert found["accepted"] > 0 and found["rejected"] > 0
