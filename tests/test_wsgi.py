"""The WSGI entry point used under gunicorn or waitress-serve."""

from __future__ import annotations

import re
import sys
import time

import pytest
import requests
import yaml

from certs import LOCALHOST, Authority
from exporter.wsgi import create
from procs import Proc, free_port

UP = re.compile(r"^claude_code_analytics_exporter_up\{[^}]*\} 1\.0$", re.MULTILINE)


@pytest.mark.e2e
def test_waitress_serve_runs_the_exporter_from_exporter_args(tmp_path):
    port = free_port()
    env = {
        "EXPORTER_ARGS": f"--demo --demo.members=5 --history.days=2 --storage.path={tmp_path}/s.db",
        "PATH": "/usr/bin:/bin",
    }
    cmd = [
        sys.executable,
        "-m",
        "waitress",
        f"--port={port}",
        "--host=127.0.0.1",
        "--call",
        "exporter.wsgi:create",
    ]
    with Proc("waitress", cmd, port, tmp_path / "waitress.log", env=env).wait_ready("/-/ready"):
        deadline = time.monotonic() + 10
        body = ""
        while UP.search(body) is None and time.monotonic() < deadline:
            body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            time.sleep(0.2)
    assert UP.search(body) is not None
    assert "claude_code_analytics_month_to_date_cost_usd{" in body


def test_a_tls_server_config_under_a_wsgi_server_is_refused_in_one_sentence(tmp_path):
    authority = Authority(tmp_path, "ca")
    issued = authority.issue("exporter", LOCALHOST, server=True)
    web = tmp_path / "web.yml"
    tls = {"cert_file": str(issued.cert), "key_file": str(issued.key)}
    web.write_text(yaml.safe_dump({"tls_server_config": tls}))
    with pytest.raises(SystemExit, match="tls_server_config needs the built-in server"):
        create(f"--demo --storage.path={tmp_path}/s.db --web.config.file={web}")
