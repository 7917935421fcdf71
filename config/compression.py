"""A page kept as text pieces compressed once, sent as one gzip stream with each request's values between them.

A page that is the same for every visitor but for a few values (``feedback.survey_page``)
need not be compressed whole on every request: each piece is deflated once, on its own
(a compressor of its own, flushed to a byte boundary, never the last block), and a request's
values go between the pieces as *stored* deflate blocks — uncompressed, so they cost no
compression and share no history with anything else on the page. The stream is one ordinary
gzip member (RFC 1951, 1952): the pieces' blocks, the values' blocks, a final empty block,
and the CRC-32 and length of the whole text.

BREACH: a secret among the values (the CSRF token) is never compressed together with
anything, so no other text on the page, chosen by an attacker or not, changes the size of a
response according to it. The header also carries a file name of 1 to 100 random bytes, as
Django's ``GZipMiddleware`` adds to every stream it writes, so that the sizes of two answers
differ by more than their values do.
"""

from __future__ import annotations

import secrets
import struct
import zlib
from collections.abc import Iterator, Sequence

# Magic, deflate, a file name follows, no time (reproducible), no extra flags, system unknown.
GZIP_HEADER = b"\x1f\x8b\x08\x08\x00\x00\x00\x00\x00\xff"
RANDOM_NAME_MAX = 100
# A final stored block of no bytes: ends the deflate stream (byte-aligned after a flush).
FINAL_EMPTY_BLOCK = b"\x01\x00\x00\xff\xff"
STORED_BLOCK_MAX = 0xFFFF
# Letters only: a gzip file name ends at its first NUL byte.
_NAME_LETTERS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# Each byte value to a letter, so that one call for random bytes makes the whole name (a
# choice per letter cost more than compressing the page): what hides the values' lengths is
# the name's random length, not which letters it has.
_AS_LETTER = bytes(_NAME_LETTERS[value % len(_NAME_LETTERS)] for value in range(256))


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


def random_name() -> bytes:
    """1 to ``RANDOM_NAME_MAX`` random letters and the NUL that ends a gzip file name."""
    length = 1 + secrets.randbelow(RANDOM_NAME_MAX)
    return secrets.token_bytes(length).translate(_AS_LETTER) + b"\x00"


class CompressedPieces:
    """Text pieces with a slot between each two, kept as UTF-8 and as deflated blocks."""

    def __init__(self, pieces: Sequence[str]) -> None:
        if not pieces:
            raise ValueError("there is at least one piece")
        self._texts = [piece.encode() for piece in pieces]
        self._deflated = [deflated_alone(text) for text in self._texts]

    @property
    def slots(self) -> int:
        return len(self._texts) - 1

    def _in_turn(self, values: Sequence[str]) -> Iterator[tuple[bytes, bytes | None]]:
        """Each piece's text and deflated blocks, then each value (UTF-8) in turn, as
        ``(text, deflated)`` pairs; a value's ``deflated`` is ``None``."""
        if len(values) != self.slots:
            raise ValueError(f"there are {self.slots} slots, {len(values)} values were given")
        yield self._texts[0], self._deflated[0]
        for value, text, deflated in zip(values, self._texts[1:], self._deflated[1:], strict=True):
            yield value.encode(), None
            yield text, deflated

    def text(self, values: Sequence[str]) -> bytes:
        """The whole text, UTF-8, with ``values`` in the slots."""
        return b"".join(text for text, _ in self._in_turn(values))

    def gzip(self, values: Sequence[str]) -> bytes:
        """The same text as one gzip stream: the pieces compressed once, the values stored."""
        parts = [GZIP_HEADER, random_name()]
        crc = size = 0
        for text, deflated in self._in_turn(values):
            parts.append(stored_blocks(text) if deflated is None else deflated)
            crc = zlib.crc32(text, crc)
            size += len(text)
        parts += (FINAL_EMPTY_BLOCK, struct.pack("<II", crc, size & 0xFFFFFFFF))
        return b"".join(parts)
