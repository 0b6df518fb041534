"""A simulated organization serving the documented Admin API endpoints over HTTP on loopback.

It is the exporter's demo mode (`--demo`), the fixture of the end-to-end tests (which add fault
injection to it in tests/faults.py) and the benchmarks' Admin API. From the bottom up:

- `members`: who the members are, their roles and lasting habits, all from the seed;
- `usage`: one actor's UTC day, drawn from the seed and rendered as the API's record, an hour late;
- `organization`: `SimulatedOrganization`, the members and each day's records, cached;
- `api`: `AdminApi`, the documented endpoints as a Flask app, with the points a subclass may hook;
- `server`: `serve()`, the API over HTTP in a thread;
- `cli`: `python -m exporter.simulator`.
"""

from .api import AdminApi
from .organization import SimulatedOrganization, SpendSpike
from .server import SimulatorServer, serve

__all__ = ["AdminApi", "SimulatedOrganization", "SimulatorServer", "SpendSpike", "serve"]
