"""The one source of the current time, and the UTC day arithmetic built on it.

Everything that asks what time it is (the poller, the backfill, the simulated organization) takes
a `Clock`, so a test or a demo can run any scenario at a chosen instant. The API's days are UTC
days, so every day boundary here is a UTC midnight."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

Clock = Callable[[], datetime]

# The Admin API serves a day's activity about an hour late (docs/metrics.md).
DATA_DELAY = timedelta(hours=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


def frozen(moment: datetime) -> Clock:
    """A clock that always says `moment`."""
    moment = as_utc(moment)
    return lambda: moment


def as_utc(moment: datetime) -> datetime:
    """`moment` with UTC as its zone when it has none."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def midnight(day: date) -> datetime:
    """00:00 UTC of `day`."""
    return datetime.combine(day, time(), UTC)


def day_start(day: date) -> float:
    """00:00 UTC of `day`, in seconds since the epoch."""
    return midnight(day).timestamp()


def day_stamp(day: date) -> str:
    """00:00 UTC of `day` as the Admin API writes a record's date."""
    return f"{day.isoformat()}T00:00:00Z"
