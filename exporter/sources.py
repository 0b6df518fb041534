"""Where each configured organization's data comes from: the Admin API with its own key, or, with
`--demo`, the built-in simulated organizations, served on loopback for as long as the command runs.

The exporter, the backfill and the access sync all start here, so that a configuration means the
same organizations, keys and stores to each of them."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .client import AdminClient
from .config import DEFAULT_ORGANIZATION, Config, Organization
from .origin import Origin

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """One organization of the configuration and a client that reads it."""

    organization: Organization
    client: AdminClient


@contextmanager
def open_sources(config: Config) -> Iterator[list[Source]]:
    """A client per configured organization, in the configuration's order."""
    if not config.demo:
        yield [
            Source(org, _client(config, config.base_url, org.api_key))
            for org in config.organizations
        ]
        return
    from .simulator import SimulatedOrganization
    from .simulator import serve as serve_simulator

    keys = {org.name: secrets.token_urlsafe(24) for org in config.organizations}
    simulated = {
        keys[org.name]: SimulatedOrganization(
            seed=config.demo_seed + number,
            members=config.demo_members,
            name=None if org.name == DEFAULT_ORGANIZATION else f"Simulated {org.name}",
            people_seed=config.demo_seed,  # the same people, in each with a role of its own
        )
        for number, org in enumerate(config.organizations)
    }
    simulator = serve_simulator(simulated)
    log.info(
        "demo mode: %d simulated organization(s) of %d members at %s",
        len(simulated),
        config.demo_members,
        simulator.url,
    )
    try:
        yield [
            Source(org, _client(config, simulator.url, keys[org.name]))
            for org in config.organizations
        ]
    finally:
        simulator.stop()


def _client(config: Config, base_url: Origin | str, api_key: str) -> AdminClient:
    return AdminClient(
        base_url, api_key, timeout=config.api_timeout, max_retries=config.api_max_retries
    )
