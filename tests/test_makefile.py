"""The mixin as SREs consume mixins: `make` renders the conventional outputs from the same
generator as the committed ones, `jsonnetfmt --test` accepts every Jsonnet file, and
jsonnet-bundler can vendor the repository (jsonnetfile.json)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def tracked_copy(destination: Path) -> Path:
    """The repository's tracked files, as a fresh clone has them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    checkout = tracked_copy(tmp_path_factory.mktemp("checkout"))
    make(checkout)
    return checkout


def make(checkout: Path, *args: str) -> None:
    """`make ARGS` in the checkout, with this interpreter as the tools' Python."""
    done = subprocess.run(
        ["make", f"PYTHON={sys.executable}", *args],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_make_renders_the_conventional_outputs_as_the_committed_ones(made):
    assert (made / "prometheus_alerts.yaml").read_text() == (
        ROOT / "alerts/generated/alerts.yaml"
    ).read_text()
    assert (made / "prometheus_rules.yaml").read_text() == (
        ROOT / "alerts/generated/rules.yaml"
    ).read_text()
    committed = {p.name: p.read_text() for p in (ROOT / "dashboards/generated").glob("*.json")}
    rendered = {p.name: p.read_text() for p in (made / "dashboards_out").glob("*.json")}
    assert rendered == committed and committed


def test_make_renders_an_override_of_the_configuration(made):
    (made / "my-mixin.libsonnet").write_text(
        "(import 'mixin.libsonnet') + { _config+:: { monthlyBudgetUSD: 12345 } }\n"
    )
    make(made, "MIXIN=my-mixin.libsonnet", "prometheus_rules.yaml")
    assert "12345" in (made / "prometheus_rules.yaml").read_text()


def jsonnet_files() -> list[Path]:
    return sorted(
        p
        for pattern in ("*.libsonnet", "*.jsonnet")
        for p in ROOT.rglob(pattern)
        if not {".venv", "build", "vendor"} & set(p.relative_to(ROOT).parts)
    )


def test_every_jsonnet_file_is_as_jsonnetfmt_writes_it():
    unformatted = [
        str(path.relative_to(ROOT))
        for path in jsonnet_files()
        if subprocess.run(["jsonnetfmt", "--test", str(path)], check=False).returncode != 0
    ]
    assert unformatted == [], "run: make fmt"


def test_jsonnet_bundler_can_vendor_the_mixin_with_nothing_else_to_fetch():
    spec = json.loads((ROOT / "jsonnetfile.json").read_text())
    assert spec["version"] == 1 and spec["dependencies"] == []
    # Nothing the mixin imports lies outside the repository, so jb has nothing else to fetch.
    for path in jsonnet_files():
        for line in path.read_text().splitlines():
            if "import '" in line and not line.lstrip().startswith("//"):
                imported = line.split("import '", 1)[1].split("'", 1)[0]
                assert (path.parent / imported).resolve().is_relative_to(ROOT), (path, imported)


def test_the_mixin_renders_the_same_when_vendored_as_jb_lays_it_out(tmp_path):
    """`jb install` of a local checkout puts it at vendor/NAME, and users import
    NAME/mixin.libsonnet with vendor/ as the only library path (jb itself cannot be built here:
    there is no Go module proxy)."""
    import _jsonnet

    vendor = tmp_path / "vendor"
    tracked_copy(vendor / "claude-code-analytics")
    (tmp_path / "example.jsonnet").write_text(
        "local m = import 'claude-code-analytics/mixin.libsonnet';\n"
        "{ alerts: m.prometheusAlerts, rules: m.prometheusRules,"
        " dashboards: std.objectFields(m.grafanaDashboards) }\n"
    )
    out = json.loads(
        _jsonnet.evaluate_file(str(tmp_path / "example.jsonnet"), jpathdir=[str(vendor)])
    )
    assert out["alerts"] == yaml.safe_load((ROOT / "alerts/generated/alerts.yaml").read_text())
    assert out["rules"] == yaml.safe_load((ROOT / "alerts/generated/rules.yaml").read_text())
    committed = {p.name for p in (ROOT / "dashboards/generated").glob("*.json")}
    assert set(out["dashboards"]) == committed
