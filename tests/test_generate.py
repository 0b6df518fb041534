"""tools/generate.py renders a user's own override of the mixin, not only the committed output."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

from tools.generate import ROOT, main


def test_an_override_file_renders_into_its_own_folder(tmp_path):
    mine = tmp_path / "my-mixin.libsonnet"
    mine.write_text(
        "(import 'mixin.libsonnet') + "
        "{ _config+:: { monthlyBudgetUSD: 25000, dashboardUidPrefix: 'acme' } }\n"
    )
    assert main(["--mixin", str(mine), "--out", str(tmp_path / "build")]) == 0
    analytics = json.loads((tmp_path / "build" / "dashboards" / "analytics.json").read_text())
    assert analytics["uid"] == "acme-analytics"
    finance = tmp_path / "build" / "dashboards-finance"
    assert [p.name for p in finance.glob("*.json")] == ["finance.json"]
    assert not (tmp_path / "build" / "dashboards" / "finance.json").exists()
    alerts = yaml.safe_load((tmp_path / "build" / "rules" / "alerts.yaml").read_text())
    budget = [
        rule["expr"]
        for group in alerts["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "ClaudeCodeMonthToDateSpendHigh"
    ]
    thresholds = sorted(re.search(r"> on \([^)]*\) (.*?) \* group by", e).group(1) for e in budget)
    assert thresholds == ["(25000", "0.8 * (25000"]  # 80%, 100% of the budget


def test_an_override_of_the_runbook_url_reaches_every_alert(tmp_path):
    mine = tmp_path / "my-mixin.libsonnet"
    mine.write_text("(import 'mixin.libsonnet') + { _config+:: { runbookURLBase: 'https://rb' } }")
    assert main(["--mixin", str(mine), "--out", str(tmp_path / "build")]) == 0
    alerts = yaml.safe_load((tmp_path / "build" / "rules" / "alerts.yaml").read_text())
    links = {r["annotations"]["runbook_url"] for g in alerts["groups"] for r in g["rules"]}
    assert links and all(re.fullmatch(r"https://rb#claudecode[a-z]+", link) for link in links)


def test_without_jsonnet_generate_says_in_one_sentence_what_to_install(tmp_path):
    for module in ("_jsonnet", "_gojsonnet"):  # as after the README's `pip install .`
        (tmp_path / f"{module}.py").write_text(f"raise ModuleNotFoundError(name={module!r})\n")
    result = subprocess.run(
        [sys.executable, "tools/generate.py", "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)},
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "generate.py: rendering the mixin needs the jsonnet package: run pip install '.[mixin]'"
        " in this checkout (or pip install jsonnet).\n"
    )


DOCS = ["README.md", "docs/dashboards.md", "docs/alerts.md"]


@pytest.mark.parametrize("doc", DOCS)
def test_every_jsonnet_example_in_the_docs_renders(doc, tmp_path):
    blocks = re.findall(r"```jsonnet\n(.*?)```", (ROOT / doc).read_text(), re.S)
    assert blocks, f"{doc} has a Jsonnet example"
    for n, block in enumerate(blocks):
        example = tmp_path / f"example-{n}.libsonnet"
        example.write_text(block)
        assert main(["--mixin", str(example), "--out", str(tmp_path / f"build-{n}")]) == 0
        assert (tmp_path / f"build-{n}" / "dashboards" / "analytics.json").exists()
