"""Sealed answers: encrypted from the moment they are submitted until their cycle closes.

A submit writes two things in one transaction: the invitation's new status and the
answer. Whatever records that transaction — the row versions' ``xmin``, the order of rows
and TOAST chunks on disk, the WAL, a physical backup or WAL archive — pairs the two. So
the answer is not written in the clear: it is encrypted with a key that is not in the
database (``settings.RESPONSE_SEAL_KEYS``) and stored as an opaque blob beside nothing
but its cycle id. When the cycle closes, its blobs are opened and the answers written in
the clear in one shuffled batch by the close transaction, which pairs them with nobody.

What the blob must not give away either:

* its length — every plaintext is padded to one fixed size before encryption, so a long
  comment seals to exactly as many bytes as no comment at all. The size follows only the
  questionnaire (the longest header its item codes can make), which is the cycle's own:
  every answer and decline of a cycle seals to the same number of bytes;
* its time — AES-GCM with a random nonce, no timestamp (unlike Fernet, whose tokens carry
  their creation time in the clear);
* where it belongs — the cycle id is bound as associated data, so a blob moved to another
  cycle fails to open rather than joining its answers.

Each blob starts with a short key id, so that after a key rotation (new key first in the
list, old ones kept until their cycles have closed) it is opened with the key that sealed
it. The id is the same for every blob sealed with that key.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from feedback.answers import COMMENT_MAX_LENGTH, COMMENT_NAMES, REASON_MAX_LENGTH
from surveys.signals import CloseRefused

# The texts are stored as UTF-16 (the unit their limits are counted in, feedback.answers:
# two bytes each), each with a four-byte length; the rest (subject, group, ratings) is a
# small JSON header. Format 1 stored the texts as UTF-8 at up to four bytes a character,
# in a blob two thirds larger; it is still opened, for answers sealed before. Format 3 is
# format 2 with the group final: an outside rater the subject nominated is sealed as
# "nominated outside" (``OpenInvitation.sealed_group``), where formats 1 and 2 sealed every
# outside rater as "outside" (``answer_group_final``). Same length as format 2.
FORMAT = b"\x03"
_TEXT_CODECS = {b"\x01": "utf-8", b"\x02": "utf-16-le", b"\x03": "utf-16-le"}
_FORMAT_GROUP_NOT_FINAL = b"\x02"
_GROUP_NOT_FINAL = frozenset({b"\x01", _FORMAT_GROUP_NOT_FINAL})
KEY_ID_BYTES = 8
NONCE_BYTES = 12
# The header's room when the questionnaire is not given (answers sealed by a migration).
HEADER_MAX_BYTES = 16 * 1024
# Room left beyond the longest header a questionnaire's items can make.
_HEADER_SLACK_BYTES = 256
_TEXT_MAX_BYTES = 2 * max(COMMENT_MAX_LENGTH, REASON_MAX_LENGTH)
_TEXTS_BYTES = len(COMMENT_NAMES) * (4 + _TEXT_MAX_BYTES)


class SealBroken(CloseRefused):
    """A sealed answer that cannot be opened: no configured key sealed it, or it was altered.

    Raised while a cycle closes, it stops the close: the answer is not dropped silently.
    """


@lru_cache(maxsize=8)
def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"balance360 seal key id" + key).digest()[:KEY_ID_BYTES]


@lru_cache(maxsize=8)
def _cipher(key: bytes) -> AESGCM:
    # Made once per key, not for every answer sealed or opened.
    return AESGCM(key)


def _associated_data(cycle_id: int, blob_format: bytes) -> bytes:
    # From format 3 on, the format byte is bound too: it says whether the group is final
    # (``answer_group_final``), and one changed on disk must make the blob fail to open
    # rather than have an outside rater the subject nominated counted as any outside rater.
    bound = "" if blob_format in _GROUP_NOT_FINAL else f", format {blob_format[0]}"
    return f"balance360 sealed answer, cycle {cycle_id}{bound}".encode()


def _header(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


@lru_cache(maxsize=256)
def header_max_bytes(item_codes: tuple[str, ...]) -> int:
    """The room for the header of an answer to a questionnaire asking ``item_codes``: the longest
    one it can make (every rating "Can't say", the longest value; the longest group; a subject
    id of the most digits; every text named), and some slack."""
    longest = {
        "kind": "response",
        "ratings": dict.fromkeys(item_codes),
        "subject": -(2**63),
        "group": "x" * 20,
        "texts": [*COMMENT_NAMES, "reason"],
    }
    return len(_header(longest)) + _HEADER_SLACK_BYTES


def sealed_bytes(item_codes: tuple[str, ...] | None) -> int:
    """The length of every sealed answer of a questionnaire asking ``item_codes``."""
    header = HEADER_MAX_BYTES if item_codes is None else header_max_bytes(item_codes)
    return len(FORMAT) + KEY_ID_BYTES + NONCE_BYTES + 4 + header + _TEXTS_BYTES + 16


def _plaintext(payload: Mapping[str, Any], texts: list[str], *, header_max: int) -> bytes:
    header = _header(payload)
    if len(header) > header_max:
        raise ValueError("The answer's ratings are too large to seal.")
    parts = [struct.pack(">I", len(header)), header]
    for text in texts:
        encoded = text.encode(_TEXT_CODECS[FORMAT])
        if len(encoded) > _TEXT_MAX_BYTES:
            raise ValueError("A text is too long to seal.")
        parts += [struct.pack(">I", len(encoded)), encoded]
    body = b"".join(parts)
    return body + bytes(4 + header_max + _TEXTS_BYTES - len(body))


def answer_seal(
    *,
    cycle_id: int,
    payload: Mapping[str, Any],
    texts: Mapping[str, str],
    item_codes: tuple[str, ...] | None = None,
    group_final: bool = True,
) -> bytes:
    """Seal an answer: ``payload`` (small JSON values) and ``texts`` (the free texts, by name),
    to the questionnaire asking ``item_codes``. ``group_final=False`` for an answer whose group
    does not say who chose an outside rater (format 2, see ``answer_group_final``).

    Every result for one questionnaire has the same length (``sealed_bytes``), whatever was
    typed, answer or decline.
    """
    names = sorted(texts)
    if len(names) > len(COMMENT_NAMES):
        raise ValueError("Too many texts to seal.")
    key = settings.RESPONSE_SEAL_KEYS[0]
    header_max = HEADER_MAX_BYTES if item_codes is None else header_max_bytes(item_codes)
    plaintext = _plaintext({**payload, "texts": names}, [texts[name] for name in names], header_max=header_max)
    nonce = os.urandom(NONCE_BYTES)
    blob_format = FORMAT if group_final else _FORMAT_GROUP_NOT_FINAL
    ciphertext = _cipher(key).encrypt(nonce, plaintext, _associated_data(cycle_id, blob_format))
    return blob_format + _key_id(key) + nonce + ciphertext


def answer_group_final(blob: bytes | memoryview) -> bool:
    """Whether ``blob`` was sealed under the group its answer counts in (format 3 on).

    An answer sealed before (formats 1 and 2) says "outside" for every outside rater, those
    the subject nominated included: the close then sets apart every outside answer of a
    subject who nominated outside raters, as it did when it was sealed.
    """
    return bytes(blob[:1]) not in _GROUP_NOT_FINAL


def answer_unseal(*, cycle_id: int, blob: bytes | memoryview) -> tuple[dict[str, Any], dict[str, str]]:
    """Open a sealed answer of ``cycle_id``: (payload, texts). Raises ``SealBroken``."""
    blob = bytes(blob)
    codec = _TEXT_CODECS.get(blob[:1])
    if codec is None:
        raise SealBroken("unknown sealed-answer format")
    key_id = blob[1 : 1 + KEY_ID_BYTES]
    keys = [key for key in settings.RESPONSE_SEAL_KEYS if _key_id(key) == key_id]
    if not keys:
        raise SealBroken("no configured RESPONSE_SEAL_KEY sealed this answer")
    nonce = blob[1 + KEY_ID_BYTES : 1 + KEY_ID_BYTES + NONCE_BYTES]
    try:
        plaintext = _cipher(keys[0]).decrypt(
            nonce, blob[1 + KEY_ID_BYTES + NONCE_BYTES :], _associated_data(cycle_id, blob[:1])
        )
    except InvalidTag:
        raise SealBroken("the sealed answer does not open with its key (altered, or of another cycle)") from None
    (length,) = struct.unpack_from(">I", plaintext, 0)
    payload = json.loads(plaintext[4 : 4 + length].decode("utf-8"))
    offset = 4 + length
    texts: dict[str, str] = {}
    for name in payload.pop("texts"):
        (size,) = struct.unpack_from(">I", plaintext, offset)
        texts[name] = plaintext[offset + 4 : offset + 4 + size].decode(codec)
        offset += 4 + size
    return payload, texts
