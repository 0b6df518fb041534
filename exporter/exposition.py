"""The exposition /metrics serves, held gzipped; the plain text is decompressed as it is sent, for
a client that does not accept gzip.

At 50,000 members the text is up to 370 MB (on the 1st of a month, with last month's series and
the organization's labels on every one), its gzip 8.5 MB, and Prometheus always asks for gzip.
Holding the text beside the gzip, and a second copy while the next poll's exposition was built, was
most of the exporter's memory (docs/performance.md). The render now compresses the text as it
writes it, and a plain answer decompresses it a piece at a time: the text is never held whole.

An exposition is a sequence of gzip members, which a reader reads as one stream (RFC 1952): the
data's, compressed once per poll, then small ones after it (the exporter's own series, and what a
scrape adds). The text format and OpenMetrics share the data's member, whose gauges read the same
in both, and differ only in the small members after it; each answer sends the members one after
the other, never joined into one copy."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterable, Iterator, Mapping

GZIP_LEVEL = 6
GZIP_WBITS = 31  # zlib's window with a gzip header and trailer
# Compressed bytes decompressed at a time: at the exposition's ratio, about 150 kB of text. Four
# times that left each plain scrape in flight holding 3 MB, and the server's threads more.
INFLATE_STEP = 4 * 1024


class Exposition:
    """One exposition: one or more gzip members that a reader reads as one stream (RFC 1952),
    `gzipped` whole or a member at a time from `gzipped_pieces()`, and its plain text of `length`
    bytes, given or else decompressed when read. `labels` are the organization labels its series
    carry, for what a scrape adds to it."""

    def __init__(
        self,
        plain: bytes | None,
        gzipped: bytes,
        length: int | None = None,
        labels: Mapping[str, str] | None = None,
    ):
        if plain is not None:
            length = len(plain)
        elif length is None:
            raise ValueError("an exposition without its plain text needs the text's length")
        self._members: tuple[bytes, ...] = (gzipped,)
        self.length: int = length
        self.labels: Mapping[str, str] = labels or {}
        self._plain = plain

    @classmethod
    def small(cls, text: bytes) -> Exposition:
        """The exposition of a small `text`, held both plain and gzipped."""
        return cls(text, gzip.compress(text, compresslevel=GZIP_LEVEL))

    @classmethod
    def compressed(cls, chunks: Iterable[bytes]) -> Exposition:
        """The exposition of the concatenated `chunks`, compressed as they come into one gzip
        member, so that only the compressed bytes are held."""
        stream = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, GZIP_WBITS)
        out = io.BytesIO()  # grows in place and hands over its buffer
        length = 0
        for chunk in chunks:
            length += len(chunk)
            out.write(stream.compress(chunk))
        out.write(stream.flush())
        return cls(None, out.getvalue(), length)

    def followed_by(self, text: bytes, labels: Mapping[str, str] | None = None) -> Exposition:
        """This exposition with `text` after it, compressed into a gzip member of its own.
        `labels`, when given, replace its labels."""
        return self.then(Exposition.small(text), self.labels if labels is None else labels)

    def then(self, other: Exposition, labels: Mapping[str, str] | None = None) -> Exposition:
        """This exposition followed by `other`, their members shared, not copied (the data's is
        up to 8.5 MB); with this one's labels unless `labels` are given."""
        both = Exposition(None, b"", self.length + other.length, labels or self.labels)
        both._members = tuple(m for m in (*self._members, *other._members) if m)
        return both

    @property
    def gzipped(self) -> bytes:
        """The whole gzip stream; /metrics sends gzipped_pieces() instead."""
        return b"".join(self._members)

    def gzipped_pieces(self) -> tuple[bytes, ...]:
        return self._members

    @property
    def gzipped_length(self) -> int:
        return sum(map(len, self._members))

    @property
    def plain(self) -> bytes:
        """The whole plain text; /metrics sends plain_pieces() instead."""
        if self._plain is not None:
            return self._plain
        out = io.BytesIO()
        for piece in self.plain_pieces():
            out.write(piece)
        return out.getvalue()

    def plain_pieces(self) -> Iterator[bytes]:
        """The plain text a piece at a time, decompressed as it is read."""
        if self._plain is not None:
            yield self._plain
            return
        for member in self._members:
            yield from inflate(member)


def inflate(gzipped: bytes) -> Iterator[bytes]:
    """The text of every gzip member in `gzipped`, a piece at a time."""
    view = memoryview(gzipped)
    stream = zlib.decompressobj(GZIP_WBITS)
    for start in range(0, len(view), INFLATE_STEP):
        piece: bytes | memoryview = view[start : start + INFLATE_STEP]
        while piece:
            text = stream.decompress(piece)
            if text:
                yield text
            if not stream.eof:
                break
            piece = stream.unused_data  # the next member begins in this piece
            stream = zlib.decompressobj(GZIP_WBITS)
