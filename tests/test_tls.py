"""`--web.config.file` with a `tls_server_config`, as node_exporter users write it: the exporter
serves TLS itself, with client certificates when asked. Certificates are made by each test; the
clients are requests and Python's ssl module, talking to the real exporter process."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import pytest
import requests
import yaml
from cryptography import x509
from test_security import wait_for_targets
from test_web_abuse import slow_clients

from certs import LOCALHOST, Authority, Issued
from exporter import cli
from procs import start_exporter, start_prometheus

DEMO = ("--demo", "--demo.members=5", "--history.days=2")
# The header of a 512-byte TLS handshake record: a server waits for the rest of the ClientHello.
TLS_RECORD_START = b"\x16\x03\x01\x02\x00"


@pytest.fixture
def ca(tmp_path) -> Authority:
    return Authority(tmp_path, "trusted")


@pytest.fixture
def server_cert(ca) -> Issued:
    return ca.issue("exporter", LOCALHOST, server=True)


def web_config(tmp_path: Path, tls: dict, **more: object) -> Path:
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump({"tls_server_config": tls, **more}))
    return path


def client_cert(authority: Authority, name: str) -> tuple[str, str]:
    issued = authority.issue(name, [x509.DNSName(f"{name}.example")], server=False)
    return str(issued.cert), str(issued.key)


@pytest.mark.e2e
def test_metrics_are_served_over_tls_and_not_over_plain_http(tmp_path, ca, server_cert):
    tls = {"cert_file": str(server_cert.cert), "key_file": server_cert.key.name}  # relative too
    args = (*DEMO, f"--web.config.file={web_config(tmp_path, tls)}")
    with start_exporter(tmp_path, *args, tls_client={"verify": str(ca.cert)}) as exporter:
        response = requests.get(f"{exporter.url}/metrics", verify=str(ca.cert), timeout=5)
        plain = exporter.url.replace("https://", "http://")
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{plain}/metrics", timeout=5)
    assert response.status_code == 200
    assert "claude_code_analytics_exporter_up" in response.text


@pytest.mark.e2e
def test_required_client_certificates_admit_only_those_the_client_ca_signed(
    tmp_path, ca, server_cert
):
    other = Authority(tmp_path, "other")
    tls = {
        "cert_file": str(server_cert.cert),
        "key_file": str(server_cert.key),
        "client_auth_type": "RequireAndVerifyClientCert",
        "client_ca_file": str(ca.cert),
    }
    trusted = client_cert(ca, "prometheus")
    args = (*DEMO, f"--web.config.file={web_config(tmp_path, tls)}")
    client = {"verify": str(ca.cert), "cert": trusted}
    with start_exporter(tmp_path, *args, tls_client=client) as exporter:
        url = f"{exporter.url}/metrics"
        admitted = requests.get(url, timeout=5, **client)
        for cert in (None, client_cert(other, "intruder")):
            with pytest.raises((requests.exceptions.SSLError, requests.ConnectionError)):
                requests.get(url, verify=str(ca.cert), cert=cert, timeout=5)
    assert admitted.status_code == 200


@pytest.mark.e2e
def test_client_allowed_sans_refuses_a_trusted_certificate_with_another_name(
    tmp_path, ca, server_cert
):
    tls = {
        "cert_file": str(server_cert.cert),
        "key_file": str(server_cert.key),
        "client_auth_type": "RequireAndVerifyClientCert",
        "client_ca_file": str(ca.cert),
        "client_allowed_sans": ["prometheus.example"],
    }
    args = (*DEMO, f"--web.config.file={web_config(tmp_path, tls)}")
    client = {"verify": str(ca.cert), "cert": client_cert(ca, "prometheus")}
    with start_exporter(tmp_path, *args, tls_client=client) as exporter:
        url = f"{exporter.url}/metrics"
        admitted = requests.get(url, timeout=5, **client)
        with pytest.raises(requests.ConnectionError):
            requests.get(url, verify=str(ca.cert), cert=client_cert(ca, "grafana"), timeout=5)
    assert admitted.status_code == 200


@pytest.mark.e2e
def test_min_version_tls13_refuses_a_tls12_client_and_headers_are_added(tmp_path, ca, server_cert):
    tls = {"cert_file": str(server_cert.cert), "key_file": str(server_cert.key)}
    tls["min_version"] = "TLS13"
    headers = {"Strict-Transport-Security": "max-age=31536000", "X-Frame-Options": "deny"}
    path = web_config(tmp_path, tls, http_server_config={"headers": headers, "http2": True})
    with start_exporter(
        tmp_path, *DEMO, f"--web.config.file={path}", tls_client={"verify": str(ca.cert)}
    ) as exporter:
        response = requests.get(f"{exporter.url}/-/healthy", verify=str(ca.cert), timeout=5)
        tls12 = ssl.create_default_context(cafile=str(ca.cert))
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        with (
            socket.create_connection(("127.0.0.1", exporter.port), timeout=5) as sock,
            pytest.raises(ssl.SSLError),
        ):
            tls12.wrap_socket(sock, server_hostname="127.0.0.1")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert response.headers["X-Frame-Options"] == "deny"


@pytest.mark.parametrize(
    ("tls", "complaint"),
    [
        ({"client_auth_type": "RequireAnyClientCert"}, "RequireAnyClientCert is not supported"),
        ({"client_auth_type": "Sometimes"}, "client_auth_type must be one of"),
        ({"client_auth_type": "RequireAndVerifyClientCert"}, "needs client_ca_file"),
        ({"client_ca_file": "ca.pem"}, "client_auth_type is NoClientCert"),
        ({"min_version": "TLS14"}, "min_version must be one of TLS10"),
        ({"cipher_suites": ["TLS_FAST"]}, "cipher_suites has unknown 'TLS_FAST'"),
        ({"curve_preferences": ["X25519"]}, "curve_preferences is not supported"),
        ({"cert_file": "missing.pem"}, "cannot read tls_server_config cert_file"),
        ({"key_file": "exporter.pem"}, "not a matching PEM certificate and private key"),
    ],
)
def test_a_bad_tls_server_config_is_one_clear_sentence(
    tmp_path, capsys, server_cert, tls, complaint
):
    base = {"cert_file": str(server_cert.cert), "key_file": str(server_cert.key)}
    path = web_config(tmp_path, {**base, **tls})
    assert cli.main([*DEMO, f"--web.config.file={path}"]) == 2
    error = capsys.readouterr().err
    assert complaint in error and error.count("\n") == 1 and "Traceback" not in error


def test_inline_cert_and_key_and_go_cipher_names_load(tmp_path, server_cert):
    tls = {
        "cert": server_cert.cert.read_text(),
        "key": server_cert.key.read_text(),
        "cipher_suites": ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"],
    }
    parser = cli.Parser()
    cli.add_arguments(parser)
    path = web_config(tmp_path, tls)
    web = cli.load(parser.parse_args([*DEMO, f"--web.config.file={path}"]), {}).web
    assert web is not None and web.tls is not None
    assert web.tls.context.verify_mode == ssl.CERT_NONE


@pytest.mark.e2e
def test_prometheus_scrapes_over_tls_only_with_its_client_certificate(tmp_path, ca, server_cert):
    tls = {
        "cert_file": str(server_cert.cert),
        "key_file": str(server_cert.key),
        "client_auth_type": "RequireAndVerifyClientCert",
        "client_ca_file": str(ca.cert),
    }
    cert, key = client_cert(ca, "prometheus")
    args = (*DEMO, f"--web.config.file={web_config(tmp_path, tls)}")
    client = {"verify": str(ca.cert), "cert": (cert, key)}
    with start_exporter(tmp_path, *args, tls_client=client) as exporter:
        target = {"targets": [f"127.0.0.1:{exporter.port}"]}
        trust = {"ca_file": str(ca.cert)}
        config = {
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "protected",
                    "scheme": "https",
                    "tls_config": {**trust, "cert_file": cert, "key_file": key},
                    "static_configs": [target],
                },
                {
                    "job_name": "anonymous",
                    "scheme": "https",
                    "tls_config": trust,
                    "static_configs": [target],
                },
            ],
        }
        with start_prometheus(tmp_path, config) as prometheus:
            health = wait_for_targets(prometheus.url)
    assert health == {"protected": "up", "anonymous": "down"}


@pytest.mark.e2e
def test_a_tls_scrape_answers_while_hundreds_of_clients_stall_their_handshakes(
    tmp_path, ca, server_cert
):
    tls = {"cert_file": str(server_cert.cert), "key_file": str(server_cert.key)}
    args = (*DEMO, f"--web.config.file={web_config(tmp_path, tls)}", "--web.max-connections=100")
    with (
        start_exporter(tmp_path, *args, tls_client={"verify": str(ca.cert)}) as exporter,
        slow_clients(exporter.port, 300, start=TLS_RECORD_START),
    ):
        time.sleep(1)
        started = time.monotonic()
        response = requests.get(f"{exporter.url}/metrics", verify=str(ca.cert), timeout=10)
        seconds = time.monotonic() - started
    assert response.status_code == 200 and seconds < 3
