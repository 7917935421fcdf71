"""A page kept as text pieces compressed once, sent as one gzip stream with each request's values between them.

A page that is the same for every visitor but for a few values (``feedback.survey_page``)
need not be compressed whole on every request: each piece is deflated once, on its own
(a compressor of its own, flushed to a byte boundary, never the last block), and a request's
values go between the pieces as *stored* deflate blocks — uncompressed, so they cost no
compression and share no history with anything else on the page. The stream is one ordinary
gzip member (RFC 1951, 1952): the pieces' blocks, the values' blocks, a final empty block,
and the CRC-32 and length of the whole text.

That is also why it needs none of the random padding Django's ``GZipMiddleware`` adds
against BREACH: a secret among the values (the CSRF token) is never compressed together with
anything, so no other text on the page, chosen by an attacker or not, changes its size.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

# Magic, deflate, no flags, no time (reproducible), no extra flags, operating system unknown.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
# A final stored block of no bytes: ends the deflate stream (byte-aligned after a flush).
FINAL_EMPTY_BLOCK = b"\x01\x00\x00\xff\xff"
STORED_BLOCK_MAX = 0xFFFF


def stored_blocks(data: bytes) -> bytes:
    """``data`` as non-final stored deflate blocks, each a header byte (BFINAL 0, BTYPE 00,
    padding), its length and the length's complement, then the bytes themselves."""
    blocks = []
    for start in range(0, len(data), STORED_BLOCK_MAX):
        chunk = data[start : start + STORED_BLOCK_MAX]
        blocks.append(b"\x00" + struct.pack("<HH", len(chunk), len(chunk) ^ 0xFFFF) + chunk)
    return b"".join(blocks)


def deflated_alone(data: bytes) -> bytes:
    """``data`` deflated by a compressor of its own, ending on a byte boundary, not final."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


class CompressedFrame:
    """Text pieces with a slot between each two, kept as UTF-8 and as deflated blocks."""

    def __init__(self, pieces: Sequence[str]) -> None:
        if not pieces:
            raise ValueError("a frame has at least one piece")
        self._texts = [piece.encode() for piece in pieces]
        self._deflated = [deflated_alone(text) for text in self._texts]

    @property
    def slots(self) -> int:
        return len(self._texts) - 1

    def _checked(self, values: Sequence[str]) -> list[bytes]:
        if len(values) != self.slots:
            raise ValueError(f"the frame has {self.slots} slots, {len(values)} values were given")
        return [value.encode() for value in values]

    def text(self, values: Sequence[str]) -> bytes:
        """The whole text, UTF-8, with ``values`` in the slots."""
        encoded = self._checked(values)
        parts = [self._texts[0]]
        for value, text in zip(encoded, self._texts[1:], strict=True):
            parts += (value, text)
        return b"".join(parts)

    def gzip(self, values: Sequence[str]) -> bytes:
        """The same text as one gzip stream: the pieces compressed once, the values stored."""
        encoded = self._checked(values)
        parts = [GZIP_HEADER, self._deflated[0]]
        crc = zlib.crc32(self._texts[0])
        size = len(self._texts[0])
        for value, text, deflated in zip(encoded, self._texts[1:], self._deflated[1:], strict=True):
            parts += (stored_blocks(value), deflated)
            crc = zlib.crc32(text, zlib.crc32(value, crc))
            size += len(value) + len(text)
        parts += (FINAL_EMPTY_BLOCK, struct.pack("<II", crc, size & 0xFFFFFFFF))
        return b"".join(parts)
