"""Start real processes for tests (Prometheus, Alertmanager, the exporter) on free loopback ports.

Every process is stopped by its PID, never by name, and its output goes to a log file in the
test's tmp_path, which is printed when it fails to become ready."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml

READY_TIMEOUT = 60.0


class SecretEnv(dict):
    """Environment variables that hold an Admin API key: a failure report, which shows a test's
    arguments, prints their names only."""

    def __repr__(self) -> str:
        return f"SecretEnv({', '.join(self)})"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Proc:
    """A child process serving HTTP on 127.0.0.1:port."""

    def __init__(
        self,
        name: str,
        cmd: list[str],
        port: int,
        log: Path,
        env: dict | None = None,
        scheme: str = "http",
        client: dict | None = None,
        umask: int = -1,
    ):
        """`client` holds the requests arguments (verify, cert) that reach it over TLS."""
        self.name = name
        self.port = port
        self.url = f"{scheme}://127.0.0.1:{port}"
        self.client = client or {}
        self.log = log
        self._log_file = log.open("wb")
        self.popen = subprocess.Popen(
            cmd,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            umask=umask,
        )
        self.pid = self.popen.pid

    def wait_ready(self, path: str, timeout: float = READY_TIMEOUT) -> Proc:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                break
            try:
                if requests.get(self.url + path, timeout=2, **self.client).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready on {path}:\n{self.output()[-4000:]}")

    def output(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 10.0) -> int:
        """Terminate by PID and wait; kill if it does not exit in time. Returns the exit status."""
        if self.popen.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        self._log_file.close()
        return self.popen.returncode

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_prometheus(
    tmp_path: Path,
    config: dict,
    rule_files: tuple = (),
    extra_args: tuple = (),
    blocks: Path | None = None,
    storage: Path | None = None,
    ready_timeout: float = READY_TIMEOUT,
    agent: bool = False,
) -> Proc:
    """Start Prometheus with `config` (a prometheus.yml as a dict) and the given rule files,
    on a copy of the TSDB `blocks` folder (a backfill's output) when given, or on the TSDB folder
    `storage` itself. With `agent`, in agent mode: it scrapes and remote-writes, with a write-ahead
    log in place of the TSDB, and evaluates no rules and answers no queries."""
    folder = tmp_path / f"prometheus-{free_port()}"
    folder.mkdir()
    data = storage or folder / "data"
    if blocks is not None:
        shutil.copytree(blocks, data)
    config = dict(config)
    if rule_files:
        config["rule_files"] = [str(Path(p).resolve()) for p in rule_files]
    config_path = folder / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    storage_flag = "--storage.agent.path" if agent else "--storage.tsdb.path"
    cmd = [
        "prometheus",
        *(("--enable-feature=agent",) if agent else ()),
        f"--config.file={config_path}",
        f"{storage_flag}={data}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        "--log.level=warn",
        *extra_args,
    ]
    proc = Proc("prometheus", cmd, port, folder / "prometheus.log")
    return proc.wait_ready("/-/ready", timeout=ready_timeout)


def wait_for_scrapes_and_rules(
    prometheus: Proc, job: str, count: int, timeout: float = 60.0
) -> None:
    """Until Prometheus has scraped `job` `count` times and then evaluated every rule group once
    more, so that recorded series reflect what was scraped."""
    deadline = time.monotonic() + timeout

    def get(path: str, **params: str) -> dict:
        response = requests.get(f"{prometheus.url}{path}", params=params, timeout=10)
        return response.json()["data"]

    scraped = f'count_over_time(up{{job="{job}"}}[1m]) >= {count}'
    while not get("/api/v1/query", query=scraped)["result"]:
        if time.monotonic() > deadline:
            raise AssertionError(f"Prometheus did not scrape {job} {count} times in time")
        time.sleep(0.5)
    since = time.time()
    while True:
        groups = get("/api/v1/rules")["groups"]
        evaluated = [g["lastEvaluation"][:19] for g in groups]
        if all(e >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since + 1)) for e in evaluated):
            return
        if time.monotonic() > deadline:
            raise AssertionError("Prometheus did not evaluate its rules in time")
        time.sleep(0.5)


def start_alertmanager(tmp_path: Path, config_path: Path, extra_args: tuple = ()) -> Proc:
    folder = tmp_path / f"alertmanager-{free_port()}"
    folder.mkdir()
    port = free_port()
    cmd = [
        shutil.which("prometheus-alertmanager") or "alertmanager",
        f"--config.file={config_path}",
        f"--storage.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
        *extra_args,
    ]
    return Proc("alertmanager", cmd, port, folder / "alertmanager.log").wait_ready("/-/ready")


def start_exporter(
    tmp_path: Path,
    *args: str,
    env: dict | None = None,
    ready_path: str = "/-/ready",
    storage: Path | None = None,
    tls_client: dict | None = None,
    umask: int = -1,
) -> Proc:
    """Start `python -m exporter` on a free port with its store in tmp_path (or `storage`), with
    the given umask (-1: this process's); with `tls_client` (requests' verify and cert
    arguments), it is reached over https."""
    port = free_port()
    storage = storage or tmp_path / "exporter.db"
    cmd = [
        sys.executable,
        "-m",
        "exporter",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--storage.path={storage}",
        *args,
    ]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    full_env.update(env or {})
    log = tmp_path / f"exporter-{port}.log"
    scheme = "https" if tls_client is not None else "http"
    proc = Proc(
        "exporter", cmd, port, log, env=full_env, scheme=scheme, client=tls_client, umask=umask
    )
    return proc.wait_ready(ready_path)
