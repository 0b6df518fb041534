"""Render the mixin into the committed dashboards and Prometheus rule files.

    python tools/generate.py          # write dashboards/generated/, dashboards/generated-finance/,
                                      # alerts/generated/ and deploy/kubernetes/mixin/
    python tools/generate.py --check  # exit 1 and name the stale files if the output differs
    python tools/generate.py --mixin my-mixin.libsonnet --out build/
        # render your own file (the mixin with your _config) into build/dashboards/,
        # build/dashboards-finance/, build/rules/ and build/kubernetes/

gojsonnet is used when installed (much faster); otherwise the reference `jsonnet` package.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS_DIR = ROOT / "dashboards" / "generated"
# The cross-organization dashboards, in a folder of their own: they are provisioned into another
# Grafana organization than the others, whose folder must not hold them.
FINANCE_DIR = ROOT / "dashboards" / "generated-finance"
RULES_DIR = ROOT / "alerts" / "generated"
# The same rules as one PrometheusRule and the dashboards as ConfigMaps for Grafana's dashboard
# sidecar, with a kustomization listing them, that an overlay adds to the base (docs/kubernetes.md).
KUBERNETES_DIR = ROOT / "deploy" / "kubernetes" / "mixin"
# The sidecar (Grafana's Helm chart, kube-prometheus-stack) loads ConfigMaps with this label, and
# with its `folderAnnotation` set to this annotation's name, files them into this folder.
SIDECAR_LABEL = {"grafana_dashboard": "1"}
SIDECAR_FOLDER = {"grafana_folder": "Claude Code"}
KUBERNETES_LABELS = {"app.kubernetes.io/name": "claude-code-analytics"}
# The mixin's roots are hidden fields (`::`), so they are selected explicitly; a file without the
# cross-organization dashboards renders none.
ROOTS = (
    "{ [k]: std.get(m, k, {}) for k in ['grafanaDashboards', 'grafanaFinanceDashboards',"
    " 'prometheusAlerts', 'prometheusRules'] }"
)


class NoJsonnet(Exception):
    """Neither Jsonnet evaluator is installed."""


def evaluate(path: Path = ROOT / "mixin.libsonnet", ext_code: str | None = None) -> dict:
    """Evaluate a Jsonnet file with the repository root on the import path."""
    try:
        import _gojsonnet as jsonnet
    except ImportError:
        try:
            import _jsonnet as jsonnet
        except ImportError:
            raise NoJsonnet(
                "rendering the mixin needs the jsonnet package: run pip install '.[mixin]' in this"
                " checkout (or pip install jsonnet)"
            ) from None
    snippet = f"local m = import '{path.as_posix()}';\n" + (ext_code or ROOTS)
    return json.loads(jsonnet.evaluate_snippet("generate", snippet, jpathdir=[str(ROOT)]))


def render(
    mixin: dict,
    dashboards_dir: Path = DASHBOARDS_DIR,
    rules_dir: Path = RULES_DIR,
    finance_dir: Path = FINANCE_DIR,
    kubernetes_dir: Path = KUBERNETES_DIR,
) -> dict[Path, str]:
    """Map every output file to its content."""
    files: dict[Path, str] = {}
    for folder, key in (
        (dashboards_dir, "grafanaDashboards"),
        (finance_dir, "grafanaFinanceDashboards"),
    ):
        for name, dashboard in sorted(mixin[key].items()):
            files[folder / name] = json.dumps(dashboard, indent=2, sort_keys=True) + "\n"
    for name, key in (("alerts.yaml", "prometheusAlerts"), ("rules.yaml", "prometheusRules")):
        files[rules_dir / name] = _yaml(mixin[key])
    dashboards = {name: files[dashboards_dir / name] for name in sorted(mixin["grafanaDashboards"])}
    files.update(kubernetes(mixin, dashboards, kubernetes_dir))
    return files


def kubernetes(mixin: dict, dashboards: dict[str, str], folder: Path) -> dict[Path, str]:
    """The PrometheusRule, a ConfigMap per dashboard of one organization, and their kustomization.

    The dashboards across organizations stay out: the sidecar loads every ConfigMap into one
    Grafana organization, and they belong to a finance organization of their own."""
    groups = mixin["prometheusAlerts"]["groups"] + mixin["prometheusRules"]["groups"]
    objects = {
        "prometheusrule.yaml": {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {"name": "claude-code-analytics", "labels": KUBERNETES_LABELS},
            "spec": {"groups": groups},
        }
    }
    for name, text in dashboards.items():
        objects[f"dashboard-{Path(name).stem}.yaml"] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"claude-code-analytics-dashboard-{Path(name).stem}",
                "labels": {**KUBERNETES_LABELS, **SIDECAR_LABEL},
                "annotations": SIDECAR_FOLDER,
            },
            "data": {name: text},
        }
    files = {folder / name: _yaml(obj, _Dumper) for name, obj in objects.items()}
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": list(objects),
    }
    files[folder / "kustomization.yaml"] = _yaml(kustomization)
    return files


class _Dumper(yaml.SafeDumper):
    """Writes text of several lines (a dashboard's JSON, a query) as a literal block."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def _yaml(obj: dict, dumper: type[yaml.SafeDumper] = yaml.SafeDumper) -> str:
    header = "# Generated by tools/generate.py from the Jsonnet mixin. Do not edit.\n"
    return header + yaml.dump(obj, Dumper=dumper, sort_keys=False, width=1000, allow_unicode=True)


def stale(files: dict[Path, str]) -> list[Path]:
    """Output files whose committed content differs, plus committed files no longer generated."""
    out = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    for folder, pattern in (
        (DASHBOARDS_DIR, "*.json"),
        (FINANCE_DIR, "*.json"),
        (RULES_DIR, "*.yaml"),
        (KUBERNETES_DIR, "*.yaml"),
    ):
        out += [p for p in folder.glob(pattern) if p not in files]
    return sorted(out)


def write(
    files: dict[Path, str],
    dashboards_dir: Path = DASHBOARDS_DIR,
    rules_dir: Path = RULES_DIR,
    finance_dir: Path = FINANCE_DIR,
    kubernetes_dir: Path = KUBERNETES_DIR,
) -> None:
    for folder, pattern in (
        (dashboards_dir, "*.json"),
        (finance_dir, "*.json"),
        (rules_dir, "*.yaml"),
        (kubernetes_dir, "*.yaml"),
    ):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob(pattern):
            if old not in files:
                old.unlink()
    for path, text in files.items():
        path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="fail if the committed output is stale"
    )
    parser.add_argument("--mixin", type=Path, help="render this Jsonnet file instead of the mixin")
    parser.add_argument("--out", type=Path, help="with --mixin: the folder to write into")
    args = parser.parse_args(argv)
    if args.mixin and (not args.out or args.check):
        parser.error("--mixin needs --out (and no --check)")
    try:
        mixin = evaluate(args.mixin.resolve()) if args.mixin else evaluate()
    except NoJsonnet as exc:
        parser.exit(2, f"{parser.prog}: {exc}.\n")
    if args.mixin:
        folders = (
            args.out / "dashboards",
            args.out / "rules",
            args.out / "dashboards-finance",
            args.out / "kubernetes",
        )
        files = render(mixin, *folders)
        write(files, *folders)
        print(f"wrote {len(files)} files into {args.out}")
        return 0
    files = render(mixin)
    if args.check:
        out = stale(files)
        for path in out:
            print(f"stale: {path.relative_to(ROOT)}", file=sys.stderr)
        if out:
            print("run: python tools/generate.py", file=sys.stderr)
        return 1 if out else 0
    write(files)
    print(f"wrote {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
