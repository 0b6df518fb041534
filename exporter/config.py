"""Configuration from flags (Prometheus style), an optional YAML file and the environment.

Precedence: a flag on the command line, then the YAML file (`--config.file`, keys named like the
flags without the leading dashes), then the default. The Admin API key only comes from the
environment or a file it names; with several organizations (`organizations:` in the YAML file),
each names the file of its own key."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from .origin import Origin, UnsafeUrl, parse_origin

if TYPE_CHECKING:
    from .webconfig import WebConfig

DEFAULT_PORT = 9687  # 9464 is Claude Code's own Prometheus endpoint
DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_STORAGE = "data/claude-code-analytics.db"
DEFAULT_DEMO_STORAGE = "data/demo.db"
# The name of the one organization when the configuration lists none.
DEFAULT_ORGANIZATION = "default"
ORGANIZATION_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
ORGANIZATION_KEYS = ("name", "api_key_file", "storage.path", "grafana")
# The keys of an organization's `grafana:` mapping, and of `finance:` with its `organizations`.
GRAFANA_KEYS = (
    "organization",
    "datasource_url",
    "datasource_uid",
    "datasource_name",
    "datasource_headers",
    "keep_logins",
)
_DURATION = re.compile(
    "".join(rf"(?:([0-9]+){unit})?" for unit in ("y", "w", "d", "h", "m", "s", "ms"))
)
_DURATION_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)  # seconds, as Prometheus


class ConfigError(Exception):
    """A configuration problem, stated as one sentence for the user."""


@dataclass(frozen=True)
class ServerLimits:
    """How many connections the server holds and how long it waits on each."""

    max_connections: int = 512
    read_timeout: float = 10.0  # for the whole request, from its first byte (and a TLS handshake)
    idle_timeout: float = 60.0  # between the requests of a kept-alive connection
    write_timeout: float = 60.0  # for the client to take the whole answer


@dataclass(frozen=True)
class GrafanaOrganization:
    """The Grafana organization dedicated to one Anthropic organization (or to the finance view
    across several), whose members `grafana-access sync` keeps to those the Console allows: its
    name in Grafana, the data source it holds (the URL at which Grafana reaches that Prometheus,
    and headers such as a tenant's `X-Scope-OrgID`; None keeps the sync's defaults), and the
    logins kept as members whatever the Console says."""

    name: str
    datasource_url: str
    datasource_uid: str | None = None
    datasource_name: str | None = None
    datasource_headers: dict[str, str] = field(default_factory=dict, repr=False)
    keep_logins: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Organization:
    """One Anthropic organization the exporter reads: the name the configuration gives it (scrapes
    ask for it, and it names the store), its Admin API key, its store, and optionally the Grafana
    organization dedicated to it."""

    name: str
    api_key: str = field(repr=False)
    storage_path: Path
    grafana: GrafanaOrganization | None = None


@dataclass(frozen=True)
class Finance:
    """The Grafana organization of the view across `organizations` (names of the configuration):
    its members are the people allowed in every one of them, and the logins it keeps."""

    grafana: GrafanaOrganization
    organizations: tuple[str, ...]


@dataclass
class Config:
    listen_host: str
    listen_port: int
    organizations: tuple[Organization, ...]
    poll_interval: float
    poll_timeout: float
    refetch_days: int
    history_days: int | None
    base_url: Origin
    api_timeout: float
    api_max_retries: int
    member_label: str
    member_models: bool
    demo: bool
    demo_members: int
    demo_seed: int
    log_level: str
    web: WebConfig | None = None
    limits: ServerLimits = field(default_factory=ServerLimits)
    finance: Finance | None = None
    telemetry_path: str = "/metrics"
    log_format: str = "logfmt"

    def __repr__(self) -> str:  # never show the keys
        names = [org.name for org in self.organizations]
        return f"Config(base_url={str(self.base_url)!r}, organizations={names!r}, ...)"


def parse_duration(text: object, setting: str) -> float:
    """Seconds of a Prometheus duration (`0`, `500ms`, `30s`, `1h30m`, `1w`, `1y`); `setting` names
    where the text came from in the error."""
    text = str(text).strip()
    match = _DURATION.fullmatch(text)
    if text == "0":
        return 0.0
    if not match or not any(match.groups()):
        raise ConfigError(
            f"{setting} must be a duration like 500ms, 30s, 5m or 1h30m, not {text!r}"
        )
    return sum(int(n or 0) * unit for n, unit in zip(match.groups(), _DURATION_UNITS, strict=True))


def parse_listen_address(text: object, setting: str) -> tuple[str, int]:
    host, sep, port = str(text).rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"{setting} must be host:port (for example :{DEFAULT_PORT}), not {text!r}"
        )
    return host.strip("[]") or "0.0.0.0", int(port)


def telemetry_path(text: object, setting: str) -> str:
    """A path for the metrics: absolute, and none of the landing page's or the probes'."""
    path = str(text)
    if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", path) or path.startswith("/-/"):
        raise ConfigError(
            f"{setting} must be a path like /metrics, other than / and /-/..., not {text!r}"
        )
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The serve flags. Defaults are None so that the YAML file fills what flags leave out."""
    add = parser.add_argument
    add("--config.file", dest="config_file", metavar="PATH", help="optional YAML file of settings")
    add(
        "--web.listen-address",
        dest="web.listen-address",
        metavar="HOST:PORT",
        help=f"address to serve /metrics on (default :{DEFAULT_PORT})",
    )
    add(
        "--storage.path",
        dest="storage.path",
        metavar="PATH",
        help=f"SQLite store (default {DEFAULT_STORAGE}; {DEFAULT_DEMO_STORAGE} with --demo)",
    )
    add(
        "--poll.interval",
        dest="poll.interval",
        metavar="DURATION",
        help="how often to poll the Admin API (default 5m, at least 10s)",
    )
    add(
        "--poll.timeout",
        dest="poll.timeout",
        metavar="DURATION",
        help="longest a poll may take before it gives up what is left (default 10m)",
    )
    add(
        "--poll.refetch-days",
        dest="poll.refetch-days",
        metavar="N",
        help="days, today included, refetched on every poll for late data (default 3)",
    )
    add(
        "--history.days",
        dest="history.days",
        metavar="N",
        help="days of history to load on first start (default: back to the first of last month, "
        "and at least the 30 days of the monthly active members)",
    )
    add(
        "--api.timeout",
        dest="api.timeout",
        metavar="DURATION",
        help="timeout of one Admin API request (default 30s)",
    )
    add(
        "--api.max-retries",
        dest="api.max-retries",
        metavar="N",
        help="retries of a failed Admin API request (default 5)",
    )
    add(
        "--metrics.member-label",
        dest="metrics.member-label",
        metavar="MODE",
        help="keep (email or API key name), pseudonymize, or drop the member label (default keep)",
    )
    add(
        "--metrics.member-models",
        dest="metrics.member-models",
        action="store_const",
        const=True,
        help="add member and actor_type labels to the per-model series",
    )
    add(
        "--demo",
        dest="demo",
        action="store_const",
        const=True,
        help="serve a built-in simulated organization instead of the Admin API (no key needed)",
    )
    add(
        "--demo.members",
        dest="demo.members",
        metavar="N",
        help="members of the simulated organization (default 50)",
    )
    add("--demo.seed", dest="demo.seed", metavar="N", help="seed of the simulated organization")
    add("--log.level", dest="log.level", metavar="LEVEL", help="debug, info, warning or error")
    add(
        "--log.format",
        dest="log.format",
        metavar="FORMAT",
        help="logfmt or json, one line per record on stderr (default logfmt)",
    )
    add(
        "--web.telemetry-path",
        dest="web.telemetry-path",
        metavar="PATH",
        help="path under which to expose the metrics (default /metrics)",
    )
    add(
        "--web.config.file",
        dest="web.config.file",
        metavar="PATH",
        help="exporter-toolkit web config: tls_server_config, basic_auth_users,"
        " http_server_config, rate_limit, and bearer_token_file (see docs/security.md)",
    )
    add(
        "--web.max-connections",
        dest="web.max-connections",
        metavar="N",
        help="connections held at once; when full, the one waiting longest for its request"
        " makes room (default 512)",
    )
    add(
        "--web.read-timeout",
        dest="web.read-timeout",
        metavar="DURATION",
        help="time for a whole request (or a TLS handshake) to arrive (default 10s)",
    )
    add(
        "--web.idle-timeout",
        dest="web.idle-timeout",
        metavar="DURATION",
        help="time a kept-alive connection may wait for its next request (default 60s)",
    )
    add(
        "--web.write-timeout",
        dest="web.write-timeout",
        metavar="DURATION",
        help="time a client has to take a whole answer (default 60s)",
    )


FILE_KEYS = {
    "organizations",
    "finance",
    "web.listen-address",
    "storage.path",
    "poll.interval",
    "poll.timeout",
    "poll.refetch-days",
    "history.days",
    "api.timeout",
    "api.max-retries",
    "metrics.member-label",
    "metrics.member-models",
    "demo",
    "demo.members",
    "demo.seed",
    "log.level",
    "log.format",
    "web.telemetry-path",
    "web.config.file",
    "web.max-connections",
    "web.read-timeout",
    "web.idle-timeout",
    "web.write-timeout",
}


def load(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Config:
    env = os.environ if environ is None else environ
    s = _Settings(args)
    demo = s.boolean("demo", False)
    listen = "web.listen-address"
    host, port = parse_listen_address(s.get(listen, f":{DEFAULT_PORT}"), s.name(listen))
    history = s.get("history.days", None)
    storage = Path(str(s.get("storage.path", DEFAULT_DEMO_STORAGE if demo else DEFAULT_STORAGE)))
    organizations = _organizations(s, env, demo, storage)
    return Config(
        listen_host=host,
        listen_port=port,
        organizations=organizations,
        finance=_finance(s, organizations),
        poll_interval=s.duration("poll.interval", "5m", at_least="10s"),
        poll_timeout=s.duration("poll.timeout", "10m"),
        refetch_days=s.integer("poll.refetch-days", 3, 1, 31),
        history_days=None if history is None else s.integer("history.days", history, 1, 3660),
        base_url=parse_origin(DEFAULT_BASE_URL, "the default URL") if demo else admin_api_url(env),
        api_timeout=s.duration("api.timeout", "30s"),
        api_max_retries=s.integer("api.max-retries", 5, 0, 20),
        member_label=s.choice("metrics.member-label", "keep", ("keep", "pseudonymize", "drop")),
        member_models=s.boolean("metrics.member-models", False),
        demo=demo,
        demo_members=s.integer("demo.members", 50, 1, 100_000),
        demo_seed=s.integer("demo.seed", 1, 0, 2**31),
        log_level=s.choice("log.level", "info", ("debug", "info", "warning", "error")).upper(),
        log_format=s.choice("log.format", "logfmt", ("logfmt", "json")),
        telemetry_path=telemetry_path(
            s.get("web.telemetry-path", "/metrics"), s.name("web.telemetry-path")
        ),
        web=_web_config(s.get("web.config.file", None)),
        limits=ServerLimits(
            max_connections=s.integer("web.max-connections", 512, 1, 65536),
            read_timeout=s.duration("web.read-timeout", "10s", at_least="100ms"),
            idle_timeout=s.duration("web.idle-timeout", "60s", at_least="100ms"),
            write_timeout=s.duration("web.write-timeout", "60s", at_least="100ms"),
        ),
    )


def _organizations(
    s: _Settings, env: dict[str, str] | os._Environ, demo: bool, storage: Path
) -> tuple[Organization, ...]:
    """The organizations of the YAML file's `organizations:` list, or the one of the environment's
    key. Each listed organization's store is `storage.path`'s folder/NAME.db unless it names one."""
    entries = s.file.get("organizations")
    if entries is None:
        key = "" if demo else read_api_key(env, or_demo=True)
        return (Organization(DEFAULT_ORGANIZATION, key, storage),)
    where = f"{s.path}: organizations"
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where} must be a list of organizations, each with a name")
    organizations: list[Organization] = []
    for number, entry in enumerate(entries, start=1):
        at = f"{where}, entry {number}"
        _mapping(entry, ORGANIZATION_KEYS, at, "a name and an api_key_file")
        name = entry.get("name")
        if not isinstance(name, str) or not ORGANIZATION_NAME.fullmatch(name):
            raise ConfigError(
                f"{at}: name must be lower-case letters, digits, - and _ (like research), "
                f"not {name!r}"
            )
        key = ""
        if not demo:
            path = entry.get("api_key_file")
            if not isinstance(path, str) or not path.strip():
                raise ConfigError(f"{at} ({name}) needs api_key_file, the file holding its key")
            key = read_secret_file(path.strip(), f"{where}: {name}: api_key_file")
        own = entry.get("storage.path")
        grafana = entry.get("grafana")
        organizations.append(
            Organization(
                name,
                key,
                Path(str(own)) if own else storage.parent / f"{name}.db",
                None if grafana is None else _grafana(grafana, f"{where}: {name}: grafana"),
            )
        )
    grafana_names = [o.grafana.name for o in organizations if o.grafana]
    for what, values in (
        ("name", [o.name for o in organizations]),
        ("storage.path", [str(o.storage_path.resolve()) for o in organizations]),
        ("grafana organization", grafana_names),
    ):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ConfigError(f"{where}: two organizations have the same {what} {repeated[0]!r}")
    return tuple(organizations)


def _finance(s: _Settings, organizations: tuple[Organization, ...]) -> Finance | None:
    """The `finance:` mapping: the Grafana organization of the view across `organizations`
    (default: all of them), with the keys of an organization's `grafana:`."""
    entry = s.file.get("finance")
    if entry is None:
        return None
    where = f"{s.path}: finance"
    _mapping(entry, (*GRAFANA_KEYS, "organizations"), where, "an organization and a datasource_url")
    known = [o.name for o in organizations]
    listed = entry.get("organizations", known)
    if not isinstance(listed, list) or not listed or not all(isinstance(n, str) for n in listed):
        raise ConfigError(f"{where}: organizations must be a list of the organizations' names")
    unknown = sorted(set(listed) - set(known))
    if unknown:
        raise ConfigError(f"{where}: organizations names {unknown[0]!r}, which is not configured")
    grafana = _grafana({k: v for k, v in entry.items() if k != "organizations"}, where)
    taken = {o.grafana.name: o.name for o in organizations if o.grafana}
    if grafana.name in taken:
        raise ConfigError(
            f"{where}: the Grafana organization {grafana.name!r} is {taken[grafana.name]}'s; the "
            "finance view needs one of its own, whose members are allowed in every organization"
        )
    return Finance(grafana, tuple(dict.fromkeys(listed)))


def _mapping(entry: object, keys: tuple[str, ...], where: str, needs: str) -> dict:
    """`entry` if it is a mapping of none but `keys`; `needs` says in the error what it holds."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a mapping with {needs}")
    unknown = sorted(set(map(str, entry)) - set(keys))
    if unknown:
        raise ConfigError(
            f"{where} has unknown key(s) {', '.join(unknown)} (known: {', '.join(keys)})"
        )
    return entry


def _grafana(entry: object, where: str) -> GrafanaOrganization:
    """A `grafana:` mapping, its values checked for type; the sync checks what they mean."""
    entry = _mapping(entry, GRAFANA_KEYS, where, "an organization and a datasource_url")
    text: dict[str, str | None] = {}
    for key in ("organization", "datasource_url", "datasource_uid", "datasource_name"):
        value = entry.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"{where}: {key} must be a non-empty string, not {value!r}")
        text[key] = value.strip() if isinstance(value, str) else None
    for key, what in (
        ("organization", "the name of the Grafana organization dedicated to it"),
        ("datasource_url", "the URL at which Grafana reaches its Prometheus"),
    ):
        if text[key] is None:
            raise ConfigError(f"{where} needs {key}, {what}")
    headers = entry.get("datasource_headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ConfigError(f"{where}: datasource_headers must map header names to text values")
    keep = entry.get("keep_logins") or []
    if not isinstance(keep, list) or not all(isinstance(login, str) for login in keep):
        raise ConfigError(f"{where}: keep_logins must be a list of Grafana logins")
    return GrafanaOrganization(
        name=str(text["organization"]),
        datasource_url=str(text["datasource_url"]),
        datasource_uid=text["datasource_uid"],
        datasource_name=text["datasource_name"],
        datasource_headers=dict(headers),
        keep_logins=frozenset(login.strip() for login in keep if login.strip()),
    )


class _Settings:
    """The settings from flags and the YAML file, each read as its type; an error names the
    setting as the user gave it: `--poll.interval`, or `config.yml: poll.interval`."""

    def __init__(self, args: argparse.Namespace):
        self.path: str | None = args.config_file
        self.file = _file_values(self.path) if self.path else {}
        self.flags = {k: v for k, v in vars(args).items() if k in FILE_KEYS and v is not None}

    def get(self, key: str, default: object) -> object:
        return self.flags.get(key, self.file.get(key, default))

    def name(self, key: str) -> str:
        from_file = key in self.file and key not in self.flags
        return f"{self.path}: {key}" if from_file else f"--{key}"

    def duration(self, key: str, default: str, at_least: str = "0") -> float:
        value = self.get(key, default)
        seconds = parse_duration(value, self.name(key))
        if seconds < parse_duration(at_least, "the least duration"):
            raise ConfigError(f"{self.name(key)} must be at least {at_least}, not {value!r}")
        return seconds

    def integer(self, key: str, default: object, low: int, high: int) -> int:
        value = self.get(key, default)
        try:
            number = int(str(value))
        except ValueError:
            raise ConfigError(f"{self.name(key)} must be a whole number, not {value!r}") from None
        if not low <= number <= high:
            raise ConfigError(f"{self.name(key)} must be between {low} and {high}, not {number}")
        return number

    def boolean(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.name(key)} must be true or false, not {value!r}")
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = str(self.get(key, default)).lower()
        if value not in choices:
            listed = f"{', '.join(choices[:-1])} or {choices[-1]}"
            raise ConfigError(f"{self.name(key)} must be {listed}, not {value!r}")
        return value


def admin_api_url(env: dict[str, str] | os._Environ) -> Origin:
    """The Admin API's origin from ANTHROPIC_BASE_URL, checked before any key is sent to it."""
    try:
        return parse_origin(env.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL, "ANTHROPIC_BASE_URL")
    except UnsafeUrl as exc:
        raise ConfigError(str(exc)) from None


def read_api_key(env: dict[str, str] | os._Environ, or_demo: bool = False) -> str:
    """The Admin API key; `or_demo` when the command can run without one (`--demo`)."""
    key = read_secret(env, "ANTHROPIC_ADMIN_API_KEY")
    if not key:
        raise ConfigError(
            "no Admin API key: set ANTHROPIC_ADMIN_API_KEY or ANTHROPIC_ADMIN_API_KEY_FILE"
            + (", or run with --demo" if or_demo else "")
        )
    return key


def read_secret(
    env: Mapping[str, str],
    variable: str,
    path: str | None = None,
    path_setting: str = "",
    *,
    exact: bool = False,
) -> str | None:
    """A secret, from the file a flag names (`path`, which `path_setting` names in errors), else
    from the file `$VARIABLE_FILE` names or the value of `$VARIABLE`, which may not both be set;
    None when none is. `exact` keeps all but the line break that ends the file (a password may
    begin or end with a space); else surrounding white space is dropped (keys and tokens)."""
    if path:
        return read_secret_file(path, path_setting, exact=exact)
    from_file = env.get(f"{variable}_FILE", "").strip()
    value = env.get(variable, "")
    value = value if exact else value.strip()
    if from_file and value:
        raise ConfigError(f"both {variable} and {variable}_FILE are set: set one of them")
    if from_file:
        return read_secret_file(from_file, f"{variable}_FILE", exact=exact)
    return value or None


def read_secret_file(path: str | Path, setting: str, *, exact: bool = False) -> str:
    """A secret held in a file (its surrounding white space dropped, or with `exact` only its
    final line break); `setting` names the file's origin in the error."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {setting} {str(path)!r}: {exc.strerror}") from exc
    secret = text.removesuffix("\n").removesuffix("\r") if exact else text.strip()
    if not secret:
        raise ConfigError(f"{setting} {str(path)!r} is empty")
    return secret


def _web_config(path: object) -> WebConfig | None:
    if path is None:
        return None
    from .webconfig import load_web_config  # it builds on this module

    return load_web_config(str(path))


def yaml_mapping(path: str, flag: str) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read {flag} {path!r}: {exc.strerror}") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise ConfigError(f"{where}: {flag} is not valid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{flag} {path!r} is not valid YAML") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{flag} {path!r} must hold a mapping of settings")
    return data


def _file_values(path: str) -> dict[str, object]:
    data = yaml_mapping(path, "--config.file")
    unknown = sorted(set(map(str, data)) - FILE_KEYS)
    if unknown:
        raise ConfigError(f"--config.file {path!r} has unknown setting(s): {', '.join(unknown)}")
    return {str(k): v for k, v in data.items()}
