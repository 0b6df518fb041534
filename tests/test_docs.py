"""The docs lead somewhere real: every link between them resolves, and they point at the README only
through links to its sections."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "alerts" / "runbook.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def markdown(path: Path) -> str:
    """The Markdown of `path` without its code blocks."""
    return re.sub(r"```.*?```", "", path.read_text(), flags=re.S)


def prose(path: Path) -> str:
    """The Markdown of `path` without its code blocks and inline code."""
    return re.sub(r"`[^`\n]*`", "", markdown(path))


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of `path`."""
    headings = re.findall(r"^#+ (.+)$", markdown(path), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_its_heading(page):
    broken = []
    for target in LINK.findall(prose(page)):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists() or (anchor and anchor not in anchors(linked)):
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_docs_point_at_the_readme_only_by_links_to_its_sections(page):
    assert "README" not in LINK.sub("", prose(page))


@pytest.mark.parametrize(
    ("command", "pages"),
    [
        ([], ["README.md", "docs/access.md"]),
        (["backfill"], ["docs/backfill.md", "README.md"]),
        (["grafana-access", "sync"], ["docs/access.md"]),
    ],
    ids=["exporter", "backfill", "grafana-access"],
)
def test_every_flag_in_help_is_in_a_table_of_the_docs(command, pages):
    shown = subprocess.run(
        [sys.executable, "-m", "exporter", *command, "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout
    lines = [line for page in pages for line in markdown(ROOT / page).splitlines()]
    rows = "\n".join(line for line in lines if line.startswith("|"))
    flags = set(re.findall(r"(?<![\w-])--[a-z][a-z.-]*[a-z]", shown)) - {"--help"}
    assert {flag for flag in flags if not re.search(f"`{re.escape(flag)}[` =]", rows)} == set()
