"""What users look for beside the code: the license that pyproject.toml declares, a changelog with
the version being released, and an image whose OCI labels say the same as the package."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from exporter import __version__

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
OCI = "org.opencontainers.image."


def dockerfile_labels() -> dict[str, str]:
    """The final stage's OCI labels, each ${ARG} replaced by the ARG's default."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    final = text[text.rindex("\nFROM ") :]
    args = dict(re.findall(r'^ARG (\w+)="?([^"\n]*)"?$', final, re.M))
    labels = dict(re.findall(rf'({re.escape(OCI)}[a-z]+)="([^"]*)"', final))
    return {k: re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], v) for k, v in labels.items()}


def test_the_license_file_is_the_license_pyproject_declares():
    assert PROJECT["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_the_image_labels_say_what_the_package_says():
    labels = dockerfile_labels()
    assert labels[f"{OCI}title"] == PROJECT["name"]
    assert labels[f"{OCI}description"] == PROJECT["description"]
    assert labels[f"{OCI}licenses"] == PROJECT["license"]["text"]
    assert labels[f"{OCI}version"] == PROJECT["version"] == __version__
    assert f"{OCI}source" in labels


def test_the_changelog_has_the_packages_version_and_what_is_unreleased():
    headings = re.findall(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert headings[0] == "Unreleased"
    assert __version__ in headings
