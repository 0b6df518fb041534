"""The Grafana access sync on a timer inside the exporter process."""

from __future__ import annotations

import time

import pytest

from exporter import access
from exporter.simulator import SimulatedOrganization, serve
from grafana_stub import GrafanaStub
from procs import start_exporter

KEY = "sk-ant-admin01-timer-test-key"
FOLDER = "claude-code"


@pytest.mark.e2e
def test_the_exporter_reconciles_grafana_access_on_its_timer(tmp_path):
    org = SimulatedOrganization(seed=7, members=20)
    with serve(org, api_key=KEY) as server, GrafanaStub() as grafana:
        for user in org.users():
            grafana.add_user(user["email"].split("@")[0], user["email"])
        grafana.add_folder(FOLDER, "Claude Code")
        allowed = {
            u["email"].split("@")[0] for u in org.users() if u["role"] in access.DEFAULT_ROLE_MAP
        }
        env = {
            "ANTHROPIC_BASE_URL": server.url,
            "ANTHROPIC_ADMIN_API_KEY": KEY,
            "GRAFANA_TOKEN": grafana.token,
        }
        args = ("--history.days=2", "--grafana-access.interval=10s", f"--grafana.url={grafana.url}")
        with start_exporter(tmp_path, *args, env=env):
            deadline = time.monotonic() + 30
            while grafana.visibility()[FOLDER] != allowed and time.monotonic() < deadline:
                time.sleep(0.2)
    assert allowed
    assert grafana.visibility()[FOLDER] == allowed
