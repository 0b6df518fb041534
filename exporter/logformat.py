"""Log lines as the Prometheus exporters write them: one record a line on stderr, in logfmt
(`ts=... level=info logger=exporter.poller msg="..."`, node_exporter's default) or in JSON.

A value is quoted and escaped whenever it holds a space, a quote, `=`, a control character or any
character past ASCII, so a message (an upstream error body among them) never starts a line of its
own."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

FORMATS = ("logfmt", "json")
# Python's level names as the Prometheus exporters write them.
LEVELS = {
    "DEBUG": "debug",
    "INFO": "info",
    "WARNING": "warn",
    "ERROR": "error",
    "CRITICAL": "error",
}
# What a logfmt value may hold unquoted: printable ASCII but space, `"`, `=` and `\`. The rest is
# quoted as a JSON string, non-ASCII escaped too (Python reads U+2028 as a line break).
_BARE = re.compile(r"[!#-<>-\[\]-~]+")


def fields(record: logging.LogRecord) -> dict[str, str]:
    """A record's fields in the order they are written: time, level, logger, message, and the
    exception's traceback when there is one."""
    out = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": LEVELS.get(record.levelname, record.levelname.lower()),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    out["ts"] = out["ts"].replace("+00:00", "Z")
    if record.exc_info:
        out["err"] = logging.Formatter().formatException(record.exc_info)
    if record.stack_info:
        out["stack"] = record.stack_info
    return out


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_value(value)}" for key, value in fields(record).items())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(fields(record))


def _value(text: str) -> str:
    return text if _BARE.fullmatch(text) else json.dumps(text)


def formatter(name: str) -> logging.Formatter:
    """The formatter of a `--log.format`: `logfmt` or `json`."""
    return JsonFormatter() if name == "json" else LogfmtFormatter()
