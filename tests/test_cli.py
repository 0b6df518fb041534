"""Command-line and configuration errors: one clear sentence, exit status 2, never the key."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from conftest import TEST_KEY
from exporter.config import ConfigError, add_arguments, load, parse_duration, read_secret

PROG = "claude-code-analytics-exporter"


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        timeout=30,
        check=False,
    )


def parse(*args: str, env: dict | None = None):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return load(parser.parse_args(list(args)), env or {"ANTHROPIC_ADMIN_API_KEY": TEST_KEY})


def assert_one_sentence(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]
    assert TEST_KEY not in result.stderr + result.stdout


def test_a_missing_key_is_one_sentence_and_exit_2():
    assert_one_sentence(run(), "ANTHROPIC_ADMIN_API_KEY", "--demo")


def test_an_unknown_flag_is_one_sentence_and_exit_2():
    assert_one_sentence(run("--web.listen-adress=:1"), "--web.listen-adress")


@pytest.mark.parametrize(
    ("flag", "word"),
    [
        ("--poll.interval=soon", "duration"),
        ("--poll.interval=2s", "at least 10s"),
        ("--history.days=0", "between 1 and"),
        ("--web.listen-address=nowhere", "host:port"),
        ("--metrics.member-label=hide", "keep, pseudonymize or drop"),
    ],
)
def test_a_bad_value_is_one_sentence_and_exit_2_without_the_key(flag, word):
    assert_one_sentence(run(flag, env={"ANTHROPIC_ADMIN_API_KEY": TEST_KEY}), word)


def test_an_unreadable_key_file_is_one_sentence(tmp_path):
    missing = tmp_path / "no-such-key"
    assert_one_sentence(run(env={"ANTHROPIC_ADMIN_API_KEY_FILE": str(missing)}), "cannot read")


def test_the_key_is_read_from_a_file(tmp_path):
    path = tmp_path / "key"
    path.write_text(TEST_KEY + "\n")
    assert (
        parse(env={"ANTHROPIC_ADMIN_API_KEY_FILE": str(path)}).organizations[0].api_key == TEST_KEY
    )


@pytest.mark.parametrize("command", [(), ("grafana-access", "sync")])
def test_a_key_given_both_as_a_value_and_as_a_file_is_refused_not_guessed(tmp_path, command):
    path = tmp_path / "key"
    path.write_text("sk-ant-admin01-another-key\n")
    env = {"ANTHROPIC_ADMIN_API_KEY": TEST_KEY, "ANTHROPIC_ADMIN_API_KEY_FILE": str(path)}
    done = run(*command, env=env)
    assert_one_sentence(done, "both ANTHROPIC_ADMIN_API_KEY and ANTHROPIC_ADMIN_API_KEY_FILE")
    assert "another-key" not in done.stderr


def test_a_grafana_password_keeps_its_spaces_and_loses_only_the_final_line_break(tmp_path):
    path = tmp_path / "password"
    path.write_text(" two words \n")
    assert read_secret({}, "PASSWORD", str(path), "--password-file", exact=True) == " two words "
    assert read_secret({"PASSWORD": " pass "}, "PASSWORD", exact=True) == " pass "
    assert read_secret({"TOKEN": " token\n"}, "TOKEN") == "token"
    assert read_secret({}, "TOKEN") is None


def test_the_config_repr_never_shows_the_key():
    assert TEST_KEY not in repr(parse())


def test_the_yaml_file_fills_in_and_flags_win(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("poll.interval: 2m\nhistory.days: 10\nweb.listen-address: 127.0.0.1:9999\n")
    config = parse(f"--config.file={path}", "--history.days=20")
    assert (config.poll_interval, config.history_days) == (120.0, 20)
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 9999)


def test_an_unknown_yaml_setting_is_refused(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("poll.intervall: 2m\n")
    with pytest.raises(ConfigError, match="poll.intervall"):
        parse(f"--config.file={path}")


def test_defaults_keep_off_claude_codes_own_port_and_use_a_demo_store():
    config = parse("--demo", env={})
    assert config.listen_port == 9687 and config.listen_port != 9464
    assert str(config.organizations[0].storage_path).endswith("demo.db")
    assert config.organizations[0].api_key == ""


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("500ms", 0.5),
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("1d", 86400),
        ("1w", 7 * 86400),
        ("1y", 365 * 86400),
        ("1d12h30m15s250ms", 131415.25),
    ],
)
def test_durations_read_like_prometheus(text, seconds):
    assert parse_duration(text, "--poll.interval") == seconds


@pytest.mark.parametrize("text", ["", "5", "1.5h", "m", "5m1h", "-1s", "1 h"])
def test_a_duration_prometheus_would_refuse_is_refused(text):
    with pytest.raises(ConfigError, match="--poll.interval must be a duration"):
        parse_duration(text, "--poll.interval")


def test_every_duration_form_starts_the_exporter(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text("poll.timeout: 1w\napi.timeout: 500ms\n")
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run(
        "--demo",
        f"--config.file={config}",
        "--poll.interval=1h30m",
        "--web.idle-timeout=1y",
        f"--storage.path={blocker}/sub/store.db",
    )
    assert result.returncode == 1, result.stderr
    assert "cannot open the store" in result.stderr


def test_an_unwritable_store_is_one_sentence_and_exit_1(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run("--demo", f"--storage.path={blocker}/sub/store.db")
    assert result.returncode == 1
    assert "cannot open the store" in result.stderr.strip().splitlines()[-1]


def test_a_bad_duration_in_the_config_file_names_the_file_and_the_setting(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("poll.interval: soon\n")
    result = run("--demo", f"--config.file={path}")
    assert_one_sentence(result)
    assert result.stderr == (
        f"{PROG}: {path}: poll.interval must be a duration like 500ms, 30s, 5m or 1h30m,"
        " not 'soon'.\n"
    )


def test_a_bad_duration_on_the_command_line_names_the_flag():
    result = run("--demo", "--poll.timeout=1h30")
    assert_one_sentence(result)
    assert result.stderr.startswith(f"{PROG}: --poll.timeout must be a duration like")


def test_invalid_yaml_in_the_config_file_gives_its_line_and_column(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text("poll.interval: 5m\nlog.level: [info\n")
    result = run("--demo", f"--config.file={path}")
    assert_one_sentence(result)
    assert result.stderr.startswith(f"{PROG}: {path}:3:1: --config.file is not valid YAML: ")


@pytest.mark.parametrize("content", ["", "\n", "  \n\t\n"])
def test_an_empty_key_file_is_reported_as_empty(tmp_path, content):
    path = tmp_path / "key"
    path.write_text(content)
    result = run(env={"ANTHROPIC_ADMIN_API_KEY_FILE": str(path)})
    assert_one_sentence(result)
    assert result.stderr == f"{PROG}: ANTHROPIC_ADMIN_API_KEY_FILE {str(path)!r} is empty.\n"


def test_grafana_access_without_a_key_does_not_offer_the_demo_it_refuses():
    result = run("grafana-access", "sync")
    assert_one_sentence(result)
    assert result.stderr == (
        f"{PROG} grafana-access: no Admin API key: set ANTHROPIC_ADMIN_API_KEY"
        " or ANTHROPIC_ADMIN_API_KEY_FILE.\n"
    )


@pytest.mark.parametrize(
    ("command", "prog"),
    [
        ([], PROG),
        (["backfill", "--since=2026-01-01", "--output=blocks"], f"{PROG} backfill"),
        (["grafana-access", "sync"], f"{PROG} grafana-access"),
    ],
    ids=["serve", "backfill", "grafana-access"],
)
@pytest.mark.parametrize(
    ("extra", "env"),
    [
        (["--bogus"], {"ANTHROPIC_ADMIN_API_KEY": TEST_KEY}),
        ([], {}),
        ([], {"ANTHROPIC_ADMIN_API_KEY": TEST_KEY, "ANTHROPIC_BASE_URL": "http://example.com"}),
    ],
    ids=["unknown-flag", "no-key", "unsafe-url"],
)
def test_every_command_reports_a_problem_as_its_name_and_one_sentence(command, prog, extra, env):
    result = run(*command, *extra, env=env)
    assert_one_sentence(result)
    assert result.stderr.startswith(f"{prog}: ") and result.stderr.endswith(".\n"), result.stderr
    assert not result.stderr.startswith(f"{prog}: error"), result.stderr
