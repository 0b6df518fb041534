"""The exposition as the poller holds it: gzipped, its plain text decompressed as it is read."""

from __future__ import annotations

import gzip

import pytest

from exporter import exposition as exposition_module
from exporter.exposition import Exposition

DATA = b"".join(b'x_total{member="m%d@example.com"} %d\n' % (n, n) for n in range(20_000))
OWN = b"# HELP up Whether the poll works.\n# TYPE up gauge\nup 1\n"


def test_the_text_compressed_as_it_comes_is_the_text_followed_by_the_exporters(monkeypatch):
    monkeypatch.setattr(exposition_module, "INFLATE_STEP", 1024)
    data = Exposition.compressed(DATA[n : n + 4096] for n in range(0, len(DATA), 4096))
    served = data.followed_by(OWN)
    assert gzip.decompress(served.gzipped) == DATA + OWN
    assert served.length == len(DATA + OWN) and served.plain == DATA + OWN
    pieces = list(served.plain_pieces())
    assert b"".join(pieces) == DATA + OWN and max(map(len, pieces)) < len(DATA) / 10


def test_the_empty_exposition_before_the_first_render_is_followed_by_the_exporters():
    served = Exposition(b"", b"").followed_by(OWN)
    assert served.plain == OWN and served.length == len(OWN)


def test_a_given_plain_text_is_served_as_it_is():
    exposition = Exposition(b"cached 1\n", gzip.compress(b"cached 1\n"))
    assert list(exposition.plain_pieces()) == [b"cached 1\n"] and exposition.length == 9


def test_without_its_text_an_exposition_needs_the_texts_length():
    with pytest.raises(ValueError, match="length"):
        Exposition(None, gzip.compress(b"x"))
