"""The exposition /metrics serves, held gzipped; the plain text is made only for a client that
does not accept gzip.

At 50,000 members the text is 130 MB (190 MB on the 1st of a month, with last month's series),
its gzip 5 to 8 MB, and Prometheus always asks for gzip: holding the text beside the gzip, and a
second copy while the next poll's exposition was built, was most of the exporter's memory
(docs/performance.md). The text is now decompressed when a client first asks for it, once per
exposition, and kept with it."""

from __future__ import annotations

import io
import threading
import zlib
from collections.abc import Iterable

GZIP_LEVEL = 6
GZIP_WBITS = 31  # zlib's window with a gzip header and trailer
# Compressed bytes decompressed at a time: at the exposition's ratio, a few MB of text.
INFLATE_STEP = 64 * 1024


class Exposition:
    """One exposition: `gzipped` (one or more gzip members, which a reader reads as one stream,
    RFC 1952) and `plain`, given or else decompressed from `gzipped` when first read."""

    def __init__(self, plain: bytes | None, gzipped: bytes):
        self.gzipped = gzipped
        self._plain = plain
        self._lock = threading.Lock()

    @property
    def plain(self) -> bytes:
        if self._plain is None:
            with self._lock:  # scrapes that ask at once wait for one decompression
                if self._plain is None:
                    self._plain = gunzip(self.gzipped)
        return self._plain


def gzip_chunks(chunks: Iterable[bytes]) -> bytes:
    """One gzip member of the concatenated `chunks`, compressed as they come, so that only the
    compressed bytes are held."""
    stream = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, GZIP_WBITS)
    out = io.BytesIO()
    for chunk in chunks:
        out.write(stream.compress(chunk))
    out.write(stream.flush())
    return out.getvalue()


def gunzip(gzipped: bytes) -> bytes:
    """The text of every gzip member in `gzipped`, built in place: gzip.decompress() joins the
    members' texts, which holds the text twice."""
    out = io.BytesIO()  # grows in place and hands over its buffer: the text is held once
    view = memoryview(gzipped)
    stream = zlib.decompressobj(GZIP_WBITS)
    for start in range(0, len(view), INFLATE_STEP):
        piece: bytes | memoryview = view[start : start + INFLATE_STEP]
        while piece:
            out.write(stream.decompress(piece))
            if not stream.eof:
                break
            piece = stream.unused_data  # the next member begins in this piece
            stream = zlib.decompressobj(GZIP_WBITS)
    return out.getvalue()
