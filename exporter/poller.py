"""Polls the Admin API off the scrape path, keeps the store current and renders the exposition.

Each poll fetches the member list, every day of the history window that the store lacks or that
was last fetched before it settled, and the last `refetch_days` days (late data). A day replaces
the stored one only when all of its pages arrived; a failing API leaves the store and the last
exposition as they were, with `up` at 0. One failing endpoint does not stop the other.

The exposition has two parts: the data series, rendered from the store after each poll, and the
exporter's own series, published again whenever they change during a poll (a request counted, a
failure, the poll starting or ending), so errors and a poll in progress show at once."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import date, timedelta

from .client import BAD_PAGE, AdminClient, ApiError
from .clock import Clock, day_start, midnight, utc_now
from .collector import (
    ACTIVE_WINDOWS,
    ExporterStats,
    MemberLabels,
    Settings,
    data_families,
    exporter_families,
    organization_labels,
    render,
    render_chunks,
)
from .config import DEFAULT_ORGANIZATION
from .exposition import Exposition
from .parse import Organization, UsageRecord, implausible
from .store import Store, StoreError

log = logging.getLogger(__name__)

LAST_SUCCESS_KEY = "last_success"
ORGANIZATION_KEY = "organization_id"
ORGANIZATION_NAME_KEY = "organization_name"
# Successful requests republish the exporter's series at most this often (seconds); failures and
# the poll's start and end republish at once.
PUBLISH_EVERY = 1.0


def default_history_days(today: date) -> int:
    """Days from the first of last month through today, so last month and this month are exact,
    and at least the longest active-members window (on 1 March, last month has 28 or 29 days)."""
    first_of_previous = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    return max((today - first_of_previous).days + 1, max(days for _, days in ACTIVE_WINDOWS))


@dataclass
class DayFetch:
    records: list[UsageRecord]
    rejected: dict[str, int]
    organization_id: str | None = None


class Poller:
    def __init__(
        self,
        client: AdminClient,
        store: Store,
        *,
        history_days: int | None,
        refetch_days: int,
        settings: Settings,
        clock: Clock = utc_now,
        poll_timeout: float | None = None,
        name: str = DEFAULT_ORGANIZATION,
    ):
        # The configured name of the organization: the `organization` a scrape asks for.
        self.name = name
        self.client = client
        self.store = store
        self.history_days = history_days
        self.refetch_days = refetch_days
        self.settings = settings
        self.clock = clock
        self.poll_timeout = poll_timeout
        self.stats = ExporterStats(counters=store.counters(), last_success=_last_success(store))
        self.members = MemberLabels(settings.member_label, store.secret())
        # The organization's id and name from the API (`/v1/organizations/me`, else the id the
        # usage records name), kept across restarts; None until the API has given them.
        self.organization_id = store.meta(ORGANIZATION_KEY)
        self.organization_name = store.meta(ORGANIZATION_NAME_KEY)
        self.ready = threading.Event()
        self.exposition = Exposition(b"", b"")
        self.openmetrics = Exposition(b"", b"")
        self._data = Exposition(b"", b"")
        self._data_labels: dict[str, str] | None = None
        self._published = 0.0
        self._rendered_from_store = False
        self._data_day: date | None = None
        self._store_errors: set[str] = set()
        client.on_request = self._count_request

    def _count_request(self, endpoint: str, code: str, failed: bool) -> None:
        self.stats.inc("api_requests", endpoint=endpoint, code=code)
        if failed:
            self.stats.inc("api_errors", endpoint=endpoint, code=code)
        if not self.turn_over() and (failed or time.monotonic() - self._published >= PUBLISH_EVERY):
            self.publish()

    def turn_over(self) -> bool:
        """Render again when the UTC day has changed since the data series were rendered, so that
        no scrape after midnight carries the previous day's `today`, even during a poll that runs
        across midnight. Returns whether it rendered."""
        if self._data_day is None or self.clock().date() == self._data_day:
            return False
        self.render()
        return True

    # Which days to fetch

    def history_start(self, today: date) -> date:
        days = self.history_days or default_history_days(today)
        return today - timedelta(days=days - 1)

    def days_to_fetch(self, today: date) -> list[date]:
        """Days never fetched, or last fetched before they settled; newest first.

        A day settles `refetch_days - 1` days after it ends: until then every poll refetches it,
        and the first poll after that fetches it one last time.
        """
        fetched = self.store.fetched_days()
        settle = timedelta(days=self.refetch_days - 1).total_seconds()
        day, start, out = today, self.history_start(today), []
        while day >= start:
            last = fetched.get(day)
            if last is None or last < day_start(day + timedelta(days=1)) + settle:
                out.append(day)
            day -= timedelta(days=1)
        return out

    def history_complete(self, today: date) -> bool:
        fetched = self.store.fetched_days()
        day = self.history_start(today)
        while day < today:
            if day not in fetched:
                return False
            day += timedelta(days=1)
        return True

    # Polling

    def poll_once(self) -> bool:
        started = time.monotonic()
        today = self.clock().date()
        self._store_errors.clear()
        self.stats.poll_started = self.clock().timestamp()
        self.stats.polling = True
        if not self.turn_over():
            self.publish()
        if self.poll_timeout is not None:
            self.client.deadline = started + self.poll_timeout
        try:
            org_ok = self._refresh_organization()
            if org_ok is None:
                ok = False
            else:
                members_ok = self._refresh_members()
                days_ok = self._refresh_days(today)
                ok = org_ok and members_ok and days_ok
        except StoreError as exc:
            self._store_failed("poll stopped", exc)
            ok = False
        finally:
            self.client.deadline = None
        self.stats.up = ok
        self.stats.polling = False
        self.stats.poll_duration = time.monotonic() - started
        self.stats.last_attempt = self.clock().timestamp()
        if ok:
            self.stats.last_success = self.stats.last_attempt
        self._save_state()
        self.render()
        # After render, and only once a render read the store: ready means /metrics has the history.
        self._mark_ready(today)
        return ok

    def _mark_ready(self, today: date) -> None:
        try:
            if self._rendered_from_store and self.history_complete(today):
                self.ready.set()
        except StoreError as exc:
            log.error("%s", exc)

    def _save_state(self) -> None:
        try:
            self.store.save_counters(self.stats.counters)
            if self.stats.last_success is not None:
                self.store.set_meta(LAST_SUCCESS_KEY, repr(self.stats.last_success))
            if self.organization_id is not None:
                self.store.set_meta(ORGANIZATION_KEY, self.organization_id)
            if self.organization_name is not None:
                self.store.set_meta(ORGANIZATION_NAME_KEY, self.organization_name)
        except StoreError as exc:
            self._store_failed("counters not saved", exc)

    def _store_failed(self, what: str, exc: StoreError) -> None:
        """Log a store failure once per poll: a full disk fails every write the same way."""
        if str(exc) not in self._store_errors:
            self._store_errors.add(str(exc))
            log.error("%s: %s; serving what the store holds", what, exc)

    def _gave_up(self) -> None:
        """Part of the poll failed for good: `up` says so now, not when the poll ends."""
        self.stats.up = False
        self.publish()

    @property
    def labels(self) -> dict[str, str]:
        """The organization labels of every series; the configured name until the API names it."""
        return organization_labels(self.organization_id, self.organization_name or self.name)

    def _refresh_organization(self) -> bool | None:
        """Read the key's organization. False when it could not be read (the poll goes on: the
        labels keep their last values); None when the key belongs to another organization than
        the one whose data the store holds, so that nothing of it may be fetched into this store."""
        try:
            org = identify(self.client, self.store, self.name)
        except ApiError as exc:
            log.error("organization not read: %s", exc)
            self._gave_up()
            return False
        except WrongOrganization as exc:
            log.error("%s; nothing was fetched", exc)
            self._gave_up()
            return None
        if org is not None:  # else the API does not serve it, and the usage records name the id
            self.organization_id, self.organization_name = org.id, org.name
        return True

    def _refresh_members(self) -> bool:
        try:
            self.store.replace_members(self.client.list_users())
        except ApiError as exc:
            log.error("member list not refreshed: %s", exc)
            self._gave_up()
            return False
        except StoreError as exc:
            self._store_failed("member list not stored", exc)
            return False
        return True

    def _refresh_days(self, today: date) -> bool:
        days = self.days_to_fetch(today)
        first_load = not self.history_complete(today)
        if first_load:
            log.info("loading history: %d days from %s", len(days), days[-1] if days else today)
        ok = True
        for done, day in enumerate(days, start=1):
            try:
                fetched = self.fetch_day(day)
                self.store.replace_day(day, fetched.records, self.clock().timestamp())
            except ApiError as exc:
                self._gave_up()
                if exc.code == BAD_PAGE:  # this day's pages are broken; the others may not be
                    log.error("%s skipped; the stored day is unchanged: %s", day, exc)
                    ok = False
                    continue
                log.error("poll stopped at %s; the stored day is unchanged: %s", day, exc)
                return False
            except StoreError as exc:
                self._store_failed(f"{day} not stored", exc)
                return False
            self.organization_id = self.organization_id or fetched.organization_id
            self.stats.inc("records_ingested", len(fetched.records))
            for reason, count in fetched.rejected.items():
                self.stats.inc("records_rejected", count, reason=reason)
            if first_load and (done % 10 == 0 or done == len(days)):
                log.info("loading history: %d/%d days", done, len(days))
        return ok

    def fetch_day(self, day: date) -> DayFetch:
        return fetch_day(self.client, day)

    def render(self, today: date | None = None) -> None:
        """Recompute every series from the store and swap in the new exposition.

        When the store cannot be read, the data series keep their last rendering and only the
        exporter's own series (`up` among them) are renewed, so they still tell the truth."""
        today = today or self.clock().date()
        # Even when the store fails below: one attempt per day change, not one per API request.
        self._data_day = today
        try:
            fetched = self.store.fetched_days()
            self.stats.oldest_day = day_start(min(fetched)) if fetched else None
            # Generators: each family is rendered, compressed and dropped before the next is
            # computed, and the text is never held whole (exporter/exposition.py).
            labels = self.labels
            families = data_families(self.store, today, self.settings, self.members)
            self._data = Exposition.compressed(render_chunks(families, labels))
            # The exporter's series take the data's labels, so that one exposition never names
            # two organizations while the API's name for it arrives during a poll.
            self._data_labels = labels
            self._rendered_from_store = True
        except StoreError as exc:
            self.stats.up = False
            log.error("metrics not refreshed from the store: %s", exc)
        self.publish()

    def publish(self) -> None:
        """Swap in the last data series with the exporter's own series as they are now.

        The gzipped exposition is two gzip members, the data's compressed once per poll and the
        exporter's; a gzip reader reads concatenated members as one stream (RFC 1952). The plain
        text is made from it if a client asks (exporter/exposition.py). `openmetrics` shares the
        data's member and has the exporter's series in OpenMetrics, without the `# EOF` that the
        scrape adds after what it appends."""
        labels = self._data_labels or self.labels
        families = list(exporter_families(self.stats))
        own, own_openmetrics = (render(families, labels, om) for om in (False, True))
        self._published = time.monotonic()
        self.exposition = self._data.followed_by(own, labels)
        self.openmetrics = self._data.followed_by(own_openmetrics, labels)

    def run(self, stop: threading.Event, interval: float) -> None:
        """Poll until `stop` is set; also wake at UTC midnight so `today` turns over on time."""
        self.render()
        self._mark_ready(self.clock().date())
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:  # the poller must outlive any bug or surprise upstream
                log.exception("poll failed")
                self.stats.up = False
                self.render()
            now = self.clock()
            next_day = midnight(now.date() + timedelta(days=1))
            stop.wait(min(interval, (next_day - now).total_seconds() + 1))


class WrongOrganization(Exception):
    """The key belongs to another organization than the one whose data the store holds."""


def identify(client: AdminClient, store: Store, name: str) -> Organization | None:
    """The organization the key of `name` belongs to (`/v1/organizations/me`), remembered in the
    store; None where the API does not serve it. Raises `WrongOrganization` rather than let one
    organization's data into a store that holds another's."""
    org = client.organization()
    if org is None:
        return None
    known = store.meta(ORGANIZATION_KEY)
    if known not in (None, org.id):
        raise WrongOrganization(
            f"the store {store.path} holds the data of organization {known}, but the key of "
            f"{name!r} belongs to organization {org.id}: give each organization its own store"
        )
    store.set_meta(ORGANIZATION_KEY, org.id)
    store.set_meta(ORGANIZATION_NAME_KEY, org.name)
    return org


def _last_success(store: Store) -> float | None:
    """When the last fully successful poll ended, kept across restarts."""
    stored = store.meta(LAST_SUCCESS_KEY)
    return float(stored) if stored else None


def fetch_day(client: AdminClient, day: date) -> DayFetch:
    """All pages of one day; exact duplicates (a record repeated across pages) are dropped, and so
    is a record that would take its actor's day past what is plausible (parse.implausible())."""
    records: list[UsageRecord] = []
    rejected: dict[str, int] = {}
    organization_id: str | None = None
    actor_days: dict[tuple[str, str], tuple[int, ...]] = {}
    # Records are compared whole only when actor and terminal match: that is rare, and comparing
    # every record's full text would cost as much as parsing it.
    seen: dict[tuple[str, str, str], list[UsageRecord]] = {}
    for page in client.usage_pages(day):
        organization_id = organization_id or page.organization_id
        for error, raw in page.rejected:
            rejected[error.reason] = rejected.get(error.reason, 0) + 1
            log.warning("skipped a record of %s for %s: %s", _who(raw), day, error)
        for record in page.records:
            same_actor = seen.setdefault(
                (record.actor_type, record.actor, record.terminal_type), []
            )
            if record in same_actor:
                rejected["duplicate"] = rejected.get("duplicate", 0) + 1
                log.warning("skipped a duplicate record: %s", record.describe())
                continue
            actor = (record.actor_type, record.actor)
            before = actor_days.get(actor)
            totals = record.totals()
            if before is not None:
                totals = tuple(a + b for a, b in zip(before, totals, strict=True))
            problem = implausible(totals)
            if problem is not None:
                rejected["implausible_value"] = rejected.get("implausible_value", 0) + 1
                log.warning("skipped a record of %s: %s", record.describe(), problem)
                continue
            actor_days[actor] = totals
            same_actor.append(record)
            records.append(record)
    return DayFetch(records, rejected, organization_id)


def _who(raw: dict) -> str:
    actor = raw.get("actor") if isinstance(raw, dict) else None
    if isinstance(actor, dict):
        return repr(actor.get("email_address") or actor.get("api_key_name") or "an unknown actor")
    return "an unknown actor"
