"""Several organizations in one configuration: how they are read, what a mistake in them says, and
how each organization's identity reaches its series and its store."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from test_cli import assert_one_sentence, parse, run

from conftest import TEST_KEY, make_poller
from exporter import access, backfill
from exporter.clock import frozen
from exporter.parse import Organization, PageError, parse_organization
from exporter.store import Store
from exposition import samples
from fake_admin_api import FakeAdminApi, fixtures_on

FIXTURE_ORG = "dc9f6c26-b22c-4831-8d01-0446bada88f1"  # what the fixture records and /me name
NOW = datetime(2026, 1, 16, 12, tzinfo=UTC)


def write_config(tmp_path: Path, organizations: object, **settings: object) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump({"organizations": organizations, **settings}))
    return path


def key_file(tmp_path: Path, name: str, key: str = TEST_KEY) -> str:
    path = tmp_path / f"{name}.key"
    path.write_text(key + "\n")
    return str(path)


# --- The configuration ----------------------------------------------------------------------------


def test_each_listed_organization_gets_its_key_and_a_store_beside_storage_path(tmp_path):
    entries = [
        {"name": "research", "api_key_file": key_file(tmp_path, "research", "sk-research")},
        {
            "name": "platform",
            "api_key_file": key_file(tmp_path, "platform", "sk-platform"),
            "storage.path": str(tmp_path / "elsewhere.db"),
        },
    ]
    config_file = write_config(tmp_path, entries, **{"storage.path": str(tmp_path / "s.db")})
    config = parse(f"--config.file={config_file}", env={})
    research, platform = config.organizations
    assert (research.name, research.api_key, research.storage_path) == (
        "research",
        "sk-research",
        tmp_path / "research.db",
    )
    assert (platform.api_key, platform.storage_path) == ("sk-platform", tmp_path / "elsewhere.db")
    assert "sk-research" not in repr(config) and "sk-research" not in repr(research)


def test_without_a_list_there_is_one_organization_named_default(tmp_path):
    (org,) = parse(f"--storage.path={tmp_path}/s.db").organizations
    assert (org.name, org.api_key, org.storage_path) == ("default", TEST_KEY, tmp_path / "s.db")


def test_the_demo_needs_no_key_file(tmp_path):
    config_file = write_config(tmp_path, [{"name": "a"}, {"name": "b"}], demo=True)
    assert [o.name for o in parse(f"--config.file={config_file}", env={}).organizations] == [
        "a",
        "b",
    ]


@pytest.mark.parametrize(
    ("organizations", "words"),
    [
        ({"name": "a"}, ("must be a list",)),
        ([], ("must be a list",)),
        (["research"], ("entry 1", "mapping")),
        ([{"api_key_file": "k"}], ("entry 1", "name")),
        ([{"name": "Research Team", "api_key_file": "k"}], ("lower-case", "'Research Team'")),
        ([{"name": "a"}], ("entry 1", "(a)", "api_key_file")),
        ([{"name": "a", "api_key_file": "/nonexistent/key"}], ("cannot read", "/nonexistent/key")),
        ([{"name": "a", "api_key": "sk-inline"}], ("unknown key", "api_key")),
        (
            [{"name": "a", "api_key_file": "KEY"}, {"name": "a", "api_key_file": "KEY"}],
            ("name 'a'",),
        ),
    ],
)
def test_a_bad_list_is_one_sentence_and_exit_2(tmp_path, organizations, words):
    key = key_file(tmp_path, "k")
    text = json.loads(json.dumps(organizations).replace('"KEY"', json.dumps(key)))
    config_file = write_config(tmp_path, text)
    assert_one_sentence(run(f"--config.file={config_file}"), str(config_file), *words)


def test_two_organizations_cannot_share_a_store(tmp_path):
    shared = str(tmp_path / "one.db")
    entries = [
        {"name": n, "api_key_file": key_file(tmp_path, n), "storage.path": shared}
        for n in ("a", "b")
    ]
    config_file = write_config(tmp_path, entries)
    assert_one_sentence(run(f"--config.file={config_file}"), "same storage.path", shared)


def test_the_backfill_must_be_told_which_of_several_organizations(tmp_path):
    entries = [{"name": n, "api_key_file": key_file(tmp_path, n)} for n in ("a", "b")]
    config_file = write_config(tmp_path, entries)
    common = [f"--config.file={config_file}", "--since=2026-01-01", f"--output={tmp_path}/out"]
    with pytest.raises(backfill.UsageError, match="--organization is required.*a, b"):
        backfill.parse_args(common, environ={})
    with pytest.raises(backfill.UsageError, match="'c' is not in the configuration"):
        backfill.parse_args([*common, "--organization=c"], environ={})
    assert backfill.parse_args([*common, "--organization=b"], environ={}).organization.name == "b"


GRAFANA = {"organization": "Claude Code: A", "datasource_url": "http://prometheus-a:9090"}


def test_an_organization_names_its_grafana_organization_and_the_finance_view_names_others(
    tmp_path,
):
    entries = [
        {"name": "a", "grafana": {**GRAFANA, "datasource_headers": {"X-Scope-OrgID": "a"}}},
        {"name": "b"},
        {"name": "c", "grafana": {**GRAFANA, "organization": "C", "keep_logins": [" cfo "]}},
    ]
    finance = {"organization": "Finance", "datasource_url": "http://all:9090"}
    config_file = write_config(tmp_path, entries, demo=True, finance=finance)
    config = parse(f"--config.file={config_file}", env={})
    a, b, c = config.organizations
    assert (a.grafana.name, a.grafana.datasource_url) == tuple(GRAFANA.values())
    assert a.grafana.datasource_headers == {"X-Scope-OrgID": "a"}
    assert b.grafana is None and c.grafana.keep_logins == {"cfo"}
    assert config.finance.grafana.name == "Finance"
    assert config.finance.organizations == ("a", "b", "c")  # all, unless it names them


@pytest.mark.parametrize(
    ("entries", "finance", "words"),
    [
        ([{"name": "a", "grafana": "Claude Code"}], None, ("a: grafana", "mapping")),
        ([{"name": "a", "grafana": {"organization": "A"}}], None, ("needs datasource_url",)),
        ([{"name": "a", "grafana": {**GRAFANA, "org": "A"}}], None, ("unknown key", "org")),
        (
            [{"name": "a", "grafana": {**GRAFANA, "keep_logins": "cfo"}}],
            None,
            ("keep_logins", "list"),
        ),
        (
            [{"name": "a", "grafana": GRAFANA}, {"name": "b", "grafana": GRAFANA}],
            None,
            ("same grafana organization", "Claude Code: A"),
        ),
        ([{"name": "a"}], {**GRAFANA, "organizations": ["z"]}, ("finance", "'z'")),
        ([{"name": "a", "grafana": GRAFANA}], GRAFANA, ("finance", "a's", "one of its own")),
    ],
)
def test_a_bad_grafana_entry_is_one_sentence_and_exit_2(tmp_path, entries, finance, words):
    settings = {"demo": True} | ({"finance": finance} if finance else {})
    config_file = write_config(tmp_path, entries, **settings)
    assert_one_sentence(run(f"--config.file={config_file}"), str(config_file), *words)


# --- /v1/organizations/me -------------------------------------------------------------------------


def test_the_documented_shape_of_the_organization_is_read():
    documented = {"id": FIXTURE_ORG, "type": "organization", "name": "Example Org"}
    assert parse_organization(documented) == Organization(FIXTURE_ORG, "Example Org")
    assert parse_organization({"id": FIXTURE_ORG}).name == FIXTURE_ORG
    with pytest.raises(PageError):
        parse_organization({"name": "no id"})


@pytest.fixture
def fixtures(tmp_path) -> Path:
    folder = tmp_path / "api"
    folder.mkdir()
    return fixtures_on(
        folder, {"2026-01-15": NOW.date() - timedelta(days=1), "2026-01-16": NOW.date()}
    )


def labels_of(poller) -> set[tuple[str, str]]:
    parsed = samples(poller.exposition.plain, organization=True)
    return {(dict(k)["organization_id"], dict(k)["organization_name"]) for _, k in parsed}


def test_every_series_names_the_organization_that_the_api_names(tmp_path, fixtures):
    with FakeAdminApi(TEST_KEY, fixtures) as api:
        poller = make_poller(api, tmp_path / "s.db", frozen(NOW), history_days=2)
        assert poller.poll_once()
    assert labels_of(poller) == {(FIXTURE_ORG, "Example Org")}


def test_without_the_endpoint_the_records_name_the_id_and_the_configuration_the_name(
    tmp_path, fixtures
):
    (fixtures / "organization.json").unlink()  # the API answers 404, as one without it would
    with FakeAdminApi(TEST_KEY, fixtures) as api:
        poller = make_poller(api, tmp_path / "s.db", frozen(NOW), history_days=2)
        assert poller.poll_once()
    assert labels_of(poller) == {(FIXTURE_ORG, "default")}


def test_a_store_of_another_organization_is_refused_and_left_alone(tmp_path, fixtures, caplog):
    path = tmp_path / "s.db"
    with FakeAdminApi(TEST_KEY, fixtures) as api:
        assert make_poller(api, path, frozen(NOW), history_days=2).poll_once()
    before = Store(path).fetched_days()
    other = {"id": "0b0b0b0b-0000-4000-8000-000000000000", "type": "organization", "name": "Other"}
    (fixtures / "organization.json").write_text(json.dumps(other))
    with FakeAdminApi(TEST_KEY, fixtures) as api, caplog.at_level(logging.ERROR):
        poller = make_poller(api, path, frozen(NOW + timedelta(hours=1)), history_days=2)
        assert not poller.poll_once()
        assert not any(endpoint == "claude_code_usage" for endpoint, _ in api.calls)
    assert Store(path).fetched_days() == before
    assert labels_of(poller) == {(FIXTURE_ORG, "Example Org")}
    assert f"holds the data of organization {FIXTURE_ORG}" in caplog.text
    assert other["id"] in caplog.text


def test_the_folder_mode_serves_one_organization_and_says_what_to_do_with_several(tmp_path, capsys):
    config_file = write_config(tmp_path, [{"name": "a"}, {"name": "b"}], demo=True)
    argv = ["sync", f"--config.file={config_file}", "--grafana.url=http://127.0.0.1:9"]
    assert access.main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "lists 2: give each a grafana: entry" in error
