"""The anonymity promise attacked as a database operator would: dumps, base backups, row versions, TOAST, WAL.

PRODUCT.md: "no database dump, physical backup, WAL file or row-version trace ties an
answer to its rater, before or after close". Raters answer through the real HTTP stack
(the JSON API and the HTML form behind the emailed link) in a known order, each with a
recognisable marker in their comments; the manager closes the cycle through the API.
Then everything an operator holds is searched for the markers: every table as text and
the relation files (as a base backup copies them) while the cycle is open and after it
closed; the response rows (their ``xmin``, physical order and TOAST chunk ids); and the
raw WAL of the whole period, where every marker found is attributed to the record — and
so the transaction — that wrote it. A submit transaction also completes its rater's
invitation, so a marker in one of its records names the rater.

The last two tests run the same analysis with sealing broken in two ways — the answer
stored in the clear, or a plaintext copy written and deleted again — to show that it
finds exactly that.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from http.cookiejar import CookieJar
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection, transaction
from rest_framework.authtoken.models import Token

from feedback import services
from feedback.answers import COMMENT_NAMES
from feedback.models import Decline, Response
from feedback.sealing import answer_unseal
from surveys.models import Cycle, Group, Invitation
from surveys.services import invitation_link_create
from tests import services_plugin
from tests.factories import CycleFactory, InvitationFactory, SubjectFactory, TeamFactory
from tests.feedback.helpers import form_data, full_answers
from tests.feedback.wal import (
    DataDirectory,
    DataDirectoryUnreadable,
    WalRecord,
    data_directory_open,
    wal_insert_position,
    wal_kept,
    wal_write_out,
)

pytestmark = pytest.mark.django_db(transaction=True)

HTTP_TIMEOUT = 30

# Submission order: rater n submits n-th. Two raters use the HTML form, one declines
# with a reason; three write a long comment that is stored out of line (TOAST).
RATERS = 13
FORM = frozenset({2, 9})
DECLINE = 6
LONG = frozenset({4, 9, 11})
LONG_LENGTH = 3000
# The marker is repeated through a long comment: TOAST cuts the value into chunks of
# about 2 KB, each written by its own WAL record, and a chunk boundary may cut one copy.
LONG_MARKER_EVERY = 500

# Urllib would send these requests through a proxy from the environment; the server is local.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Rater:
    position: int
    invitation_id: int
    token: str
    marker: str
    # The four comment fields as the response row stores them (empty when not answered).
    comments: dict[str, str]
    rating: int

    @property
    def declines(self) -> bool:
        return self.position == DECLINE

    @property
    def reason(self) -> str:
        return f"On leave for most of the period ({self.marker})."


@dataclass(frozen=True)
class StoredResponse:
    """A response row as an operator reads it, in physical (ctid) order."""

    xmin: int
    comments: dict[str, str]
    ratings: dict[str, int | None]
    toast_chunk_id: int | None


@dataclass(frozen=True)
class Trace:
    """Everything the operator saw of one cycle, from before the first submit to after the close."""

    raters: list[Rater]
    # {table: markers} in a dump (every column as text) and in a base backup (the relation files)
    tables_while_open: dict[str, set[str]]
    files_while_open: dict[str, set[str]]
    tables_after_close: dict[str, set[str]]
    files_after_close: dict[str, set[str]]
    # The transaction that submitted each rater's answer: the xmin of their invitation
    # row, which that submit updated last.
    submit_xid: dict[str, int]
    sealed_toast_chunk_ids: list[int]
    # The lengths of the WAL records each rater's submit wrote into the sealed table and its TOAST table.
    sealed_record_lengths: dict[str, tuple[int, ...]]
    responses: list[StoredResponse]
    decline_xmins: list[int]
    invitation_xmins_after_close: set[int]
    wal_xids: set[int]
    # marker → (position in the WAL stream, the record holding it, or None) for each occurrence
    wal_hits: dict[str, list[tuple[int, WalRecord | None]]]

    @property
    def answering(self) -> list[Rater]:
        return [rater for rater in self.raters if not rater.declines]

    def position_of(self, comments: dict[str, str]) -> int:
        (rater,) = [rater for rater in self.answering if rater.marker in json.dumps(comments)]
        return rater.position


# --- the raters and what they type -------------------------------------------------


def _long_text(marker: str) -> str:
    """~3000 random letters and digits: pglz cannot shrink them, so the value goes out of line uncompressed."""
    alphabet = string.ascii_letters + string.digits
    text = "".join(secrets.choice(alphabet) for _ in range(LONG_LENGTH))
    return "".join(
        f" {marker} {text[start : start + LONG_MARKER_EVERY]}" for start in range(0, LONG_LENGTH, LONG_MARKER_EVERY)
    ).strip()


def raters_invite(cycle: Cycle) -> list[Rater]:
    subject = SubjectFactory(cycle=cycle, person__name="Jonas Berg")
    raters = []
    for position in range(RATERS):
        group = Group.DIRECT_REPORT if position % 3 == 0 else Group.PEER
        invitation = InvitationFactory(subject=subject, status=Invitation.Status.OPEN, group=group)
        marker = f"walmark-{position:02d}-{secrets.token_hex(5)}"
        comments = dict.fromkeys(COMMENT_NAMES, "")
        comments["management"] = f"Plans the quarter in concrete steps ({marker})."
        comments["start_doing"] = f"Share the budget earlier, {marker}."
        if position in LONG:
            comments["keep_doing"] = _long_text(marker)
        raters.append(
            Rater(
                position=position,
                invitation_id=invitation.pk,
                token=invitation_link_create(invitation=invitation),
                marker=marker,
                comments=comments,
                rating=position % 5 + 1,
            )
        )
    return raters


# --- through the real HTTP stack ---------------------------------------------------


def _json_call(url: str, payload: Any = None, *, method: str, headers: dict[str, str] | None = None) -> Any:
    data = json.dumps(payload).encode() if payload is not None else b""
    request = urllib.request.Request(
        url, data=data if method == "POST" else None, method=method, headers={"Content-Type": "application/json"}
    )
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with _direct.open(request, timeout=HTTP_TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def answer_through_api(base_url: str, cycle: Cycle, rater: Rater) -> None:
    status, _ = _json_call(f"{base_url}/api/survey/{rater.token}/", method="GET")
    assert status == 200
    answers = full_answers(cycle, value=rater.rating, **{name: text for name, text in rater.comments.items() if text})
    assert _json_call(f"{base_url}/api/survey/{rater.token}/responses/", answers, method="POST") == (
        201,
        {"detail": "Thank you. Your answers have been recorded."},
    )


def decline_through_api(base_url: str, rater: Rater) -> None:
    assert _json_call(f"{base_url}/api/survey/{rater.token}/decline/", {"reason": rater.reason}, method="POST") == (
        201,
        {"detail": "Thank you. Your decline has been recorded."},
    )


def answer_through_form(base_url: str, cycle: Cycle, rater: Rater) -> None:
    """As a browser does it: the emailed link, the redirect to the session's survey URL, the form and its CSRF token."""
    browser = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(CookieJar())
    )
    with browser.open(f"{base_url}/s/{rater.token}/", timeout=HTTP_TIMEOUT) as page:
        survey_url = page.url
        html = page.read().decode()
    assert "/survey/" in survey_url
    assert rater.token not in survey_url
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert csrf is not None
    fields = form_data(cycle, value=str(rater.rating))
    fields.update({f"comment-{name}": text for name, text in rater.comments.items()})
    fields["csrfmiddlewaretoken"] = csrf[1]
    post = urllib.request.Request(
        survey_url,
        data=urllib.parse.urlencode(fields).encode(),
        method="POST",
        # What a browser sends from a page served with Referrer-Policy: no-referrer.
        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    )
    with browser.open(post, timeout=HTTP_TIMEOUT) as done:
        assert done.url == survey_url
        assert "<h1>Thank you — your answers are in</h1>" in done.read().decode()


def close_through_api(base_url: str, cycle: Cycle, token: str) -> None:
    assert _json_call(
        f"{base_url}/api/cycles/{cycle.pk}/close/", method="POST", headers={"Authorization": f"Token {token}"}
    ) == (200, {"changed": True, "status": Cycle.Status.CLOSED})


# --- what the operator reads -------------------------------------------------------


def tables_holding(markers: list[str]) -> dict[str, set[str]]:
    """{table: the markers in it}: every table of the public schema, every column cast to text.

    A bytea column is read with ``encode(..., 'escape')``, which keeps printable bytes as
    they are: a marker stored in a blob in the clear shows. Session data is signed
    base64, so it is decoded as well — an operator can do that without any key.
    """
    quote = connection.ops.quote_name
    columns: dict[str, list[tuple[str, str]]] = defaultdict(list)
    found: dict[str, set[str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
            "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position"
        )
        for table, column, data_type in cursor.fetchall():
            columns[table].append((column, data_type))
        assert {"feedback_response", "feedback_sealedanswer", "surveys_invitation"} <= columns.keys()
        for table, table_columns in columns.items():
            texts = [
                f"encode(scanned.{quote(column)}, 'escape')"
                if data_type == "bytea"
                else f"scanned.{quote(column)}::text"
                for column, data_type in table_columns
            ]
            condition = " OR ".join(f"strpos({text}, needle.value) > 0" for text in texts)
            cursor.execute(
                f"SELECT needle.value FROM unnest(%s::text[]) AS needle(value) "  # noqa: S608 — names from the catalog, quoted
                f"WHERE EXISTS (SELECT 1 FROM {quote(table)} AS scanned WHERE {condition})",
                [markers],
            )
            hits = {row[0] for row in cursor.fetchall()}
            if hits:
                found[table] = hits
        cursor.execute("SELECT session_data FROM django_session")
        sessions = " ".join(json.dumps(SessionStore().decode(row[0])) for row in cursor.fetchall())
    hits = {marker for marker in markers if marker in sessions}
    if hits:
        found["django_session (decoded)"] = hits
    return found


def xmins(table: str, cycle: Cycle) -> dict[int | str, int]:
    """{row id: xmin}, the id of the transaction that wrote each row's current version."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, xmin::text::bigint FROM {table} WHERE cycle_id = %s", [cycle.pk])  # noqa: S608 — table names are constants of this test
        return dict(cursor.fetchall())


def sealed_toast_chunk_ids(cycle: Cycle) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_toast_chunk_id(ciphertext)::bigint FROM feedback_sealedanswer WHERE cycle_id = %s",
            [cycle.pk],
        )
        return [row[0] for row in cursor.fetchall()]


def sealed_filenodes() -> set[int]:
    """The files of the sealed-answer table and of its TOAST table, where the blobs' chunks go."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_relation_filenode(oid), pg_relation_filenode(reltoastrelid) FROM pg_class "
            "WHERE oid = 'feedback_sealedanswer'::regclass"
        )
        row = cursor.fetchone()
    assert row is not None
    return set(row)


def responses_in_physical_order(cycle: Cycle) -> list[StoredResponse]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xmin::text::bigint, comments::text, ratings::text, pg_column_toast_chunk_id(comments)::bigint "
            "FROM feedback_response WHERE cycle_id = %s ORDER BY ctid",
            [cycle.pk],
        )
        return [
            StoredResponse(xmin=xmin, comments=json.loads(comments), ratings=json.loads(ratings), toast_chunk_id=chunk)
            for xmin, comments, ratings, chunk in cursor.fetchall()
        ]


def data_directory_or_skip() -> DataDirectory:
    try:
        return data_directory_open()
    except DataDirectoryUnreadable as unreadable:
        embedded = services_plugin._services is not None and services_plugin._services.postgres is not None
        if embedded:
            raise  # the suite's own server runs on this machine: its data directory must be readable
        pytest.skip(f"DATABASE_URL points at a PostgreSQL whose WAL and files this process cannot read: {unreadable}")


def cycle_answered_and_closed(base_url: str, manager: Any) -> Trace:
    """The whole period an operator could watch: raters answer in order, the manager closes the cycle."""
    data_directory = data_directory_or_skip()
    cycle = CycleFactory(team=TeamFactory(manager=manager), status=Cycle.Status.OPEN)
    raters = raters_invite(cycle)
    markers = [rater.marker for rater in raters]
    manager_token = Token.objects.create(user=manager).key
    with wal_kept():
        start = wal_insert_position()
        for rater in raters:
            if rater.declines:
                decline_through_api(base_url, rater)
            elif rater.position in FORM:
                answer_through_form(base_url, cycle, rater)
            else:
                answer_through_api(base_url, cycle, rater)
        tables_while_open = tables_holding(markers)
        files_while_open = data_directory.relation_files_holding(markers)
        invitation_xmins = xmins("surveys_invitation", cycle)
        submit_xid = {rater.marker: invitation_xmins[rater.invitation_id] for rater in raters}
        sealed_chunk_ids = sealed_toast_chunk_ids(cycle)
        close_through_api(base_url, cycle, manager_token)
        end = wal_write_out()
        wal = data_directory.wal(start, end)
        sealed_files = sealed_filenodes()
        files_after_close = data_directory.relation_files_holding(markers)
    return Trace(
        raters=raters,
        tables_while_open=tables_while_open,
        files_while_open=files_while_open,
        tables_after_close=tables_holding(markers),
        files_after_close=files_after_close,
        submit_xid=submit_xid,
        sealed_toast_chunk_ids=sealed_chunk_ids,
        sealed_record_lengths={
            marker: tuple(
                sorted(
                    record.total_length
                    for record in wal.records
                    if record.xid == xid and record.rmgr == "Heap" and record.filenodes & sealed_files
                )
            )
            for marker, xid in submit_xid.items()
        },
        responses=responses_in_physical_order(cycle),
        decline_xmins=list(xmins("feedback_decline", cycle).values()),
        invitation_xmins_after_close=set(xmins("surveys_invitation", cycle).values()),
        wal_xids=wal.xids,
        wal_hits={marker: wal.holding(marker.encode()) for marker in markers},
    )


def first_in_wal(trace: Trace, rater: Rater, *, xid: int) -> int:
    return min(position for position, record in trace.wal_hits[rater.marker] if record and record.xid == xid)


# --- the tests ---------------------------------------------------------------------


def test_an_operator_with_every_table_row_version_and_wal_record_cannot_tie_an_answer_to_its_rater(
    live_server: Any, manager: Any, default_questionnaire: Any
) -> None:
    # given / when: raters answer in a known order, the manager closes the cycle
    trace = cycle_answered_and_closed(live_server.url, manager)
    answering = trace.answering
    submitted = [rater.position for rater in answering]
    (decliner,) = [rater for rater in trace.raters if rater.declines]
    # Each submit ran in its own transaction: otherwise "no submit's xid" below proves little.
    assert len(set(trace.submit_xid.values())) == RATERS

    # then, while the cycle was open: neither a dump nor a base backup holds an answer in
    # the clear. Either would also hold the invitation the same submit completed, and so
    # name the rater (through xmin, or through the row and TOAST order both share); the
    # backup would show a plaintext row even if the submit had deleted it again.
    assert trace.tables_while_open == {}
    assert trace.files_while_open == {}

    # after close: every answer exactly once, as typed, and in the answer tables only —
    # any other copy (a cache, a report, an audit row) would need the same scrutiny
    stored = sorted(
        json.dumps([row.comments, sorted(set(row.ratings.values()))], sort_keys=True) for row in trace.responses
    )
    assert stored == sorted(json.dumps([rater.comments, [rater.rating]], sort_keys=True) for rater in answering)
    answer_tables = {
        "feedback_response": {rater.marker for rater in answering},
        "feedback_decline": {decliner.marker},
    }
    assert trace.tables_after_close == answer_tables
    assert trace.files_after_close == answer_tables
    assert Decline.objects.get().reason == decliner.reason

    # Row versions: one xmin for every answer, and the close's rewrite of every invitation
    # carries it too, so xmin pairs each answer with all invitations of the cycle at once
    # — and with no submit.
    close_xids = {row.xmin for row in trace.responses} | set(trace.decline_xmins)
    assert len(close_xids) == 1
    (close_xid,) = close_xids
    assert trace.invitation_xmins_after_close == {close_xid}
    assert close_xid not in trace.submit_xid.values()
    assert close_xid > max(trace.submit_xid.values())  # handed out after every submit: the close's

    # Physical order: rows sit in the pages in the order they were inserted; in
    # submission order they would line up with the invitations' completion order. The
    # chance that a fair shuffle of twelve gives back the submission order is 1 in 12!.
    physical = [trace.position_of(row.comments) for row in trace.responses]
    assert sorted(physical) == submitted
    assert physical != submitted

    # TOAST: the long comments (and only they) are stored out of line, under chunk ids
    # handed out by a counter as the values are written. Every one of them is newer
    # than the chunk id of the last sealed answer, so none was handed out by a submit,
    # and they come in the order of the close's shuffled insert (as its WAL records
    # show it), not the raters'. With three long comments a fair shuffle keeps their
    # submission order 1 time in 6, so that order alone cannot be asserted against;
    # the order of all twelve (above, and in the WAL below) can.
    chunk_of = {trace.position_of(row.comments): row.toast_chunk_id for row in trace.responses}
    assert {position for position, chunk in chunk_of.items() if chunk is not None} == LONG
    long_chunks = [chunk for position, chunk in chunk_of.items() if position in LONG and chunk is not None]
    assert len(trace.sealed_toast_chunk_ids) == RATERS
    assert min(long_chunks) > max(trace.sealed_toast_chunk_ids)
    long_raters = [rater for rater in answering if rater.position in LONG]
    inserted = sorted(long_raters, key=lambda rater: first_in_wal(trace, rater, xid=close_xid))
    assert sorted(LONG, key=lambda position: chunk_of[position] or 0) == [rater.position for rater in inserted]

    # WAL: the range covers every submit and the close ...
    assert set(trace.submit_xid.values()) <= trace.wal_xids
    assert close_xid in trace.wal_xids
    # ... every marker is in it, each inside a record, and every record that carries one
    # belongs to the close: no WAL file pairs an answer with the submit that completed
    # its rater's invitation.
    for rater in trace.raters:
        hits = trace.wal_hits[rater.marker]
        assert hits, f"{rater.marker} is not in the WAL at all"
        assert all(record is not None for _, record in hits), f"{rater.marker} found outside every WAL record"
        assert {record.xid for _, record in hits if record} == {close_xid}, rater.marker
    # ... what each submit wrote into the sealed table is the same size, whatever was
    # typed — two lines, 3000 characters, or a decline's reason — so the WAL does not show
    # which rater wrote the long comment that reappears, out of line, after close ...
    assert len(set(trace.sealed_record_lengths.values())) == 1
    assert len(trace.sealed_record_lengths[answering[0].marker]) > 1  # the row and its blob's TOAST chunks
    # ... and the close wrote them in an order that is not the submission order.
    in_wal = sorted(answering, key=lambda rater: first_in_wal(trace, rater, xid=close_xid))
    assert [rater.position for rater in in_wal] != submitted


def test_the_response_table_has_no_column_that_dates_or_sequences_an_answer() -> None:
    # A time or a sequence number on the row would order the answers like the
    # invitations' completion, whatever the close shuffled.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type, coalesce(column_default, ''), is_identity "
            "FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'feedback_response'"
        )
        columns = cursor.fetchall()
    assert {column for column, _, _, _ in columns} >= {"id", "cycle_id", "subject_id", "group", "ratings", "comments"}
    assert [column for column, data_type, _, _ in columns if re.match(r"timestamp|date|time|interval", data_type)] == []
    assert [column for column, _, default, identity in columns if "nextval" in default or identity == "YES"] == []
    assert dict((column, data_type) for column, data_type, _, _ in columns)["id"] == "uuid"


def _store_in_the_clear(invitation: Invitation, *, payload: dict[str, Any], texts: dict[str, str]) -> Any:
    """The mistake the analysis must catch: the answer written as a plaintext row by the submit itself."""
    if payload["kind"] == services.RESPONSE:
        return Response.objects.create(
            cycle_id=invitation.cycle_id,
            subject_id=invitation.subject_id,
            group=invitation.group,
            ratings=payload["ratings"],
            comments={name: texts.get(name, "") for name in COMMENT_NAMES},
        )
    return Decline.objects.create(
        cycle_id=invitation.cycle_id,
        subject_id=invitation.subject_id,
        group=invitation.group,
        reason=texts["reason"],
    )


def _claim_writing_plaintext(*, copy_deleted: bool) -> Any:
    """A submit's claim that also writes the answer in the clear, in the claim's own transaction:
    instead of the sealed blob, or (``copy_deleted``) as a scratch copy deleted before the
    sealed blob is stored."""
    claim = services._invitation_claim

    def claim_with_plaintext(invitation: Any, *, new_status: str, sealed: bytes | None = None) -> None:
        with transaction.atomic():
            if sealed is not None:
                payload, texts = answer_unseal(cycle_id=invitation.cycle_id, blob=sealed)
                plaintext = _store_in_the_clear(invitation, payload=payload, texts=texts)
                if copy_deleted:
                    plaintext.delete()
            claim(invitation, new_status=new_status, sealed=sealed if copy_deleted else None)

    return claim_with_plaintext


def test_the_analysis_ties_every_answer_to_its_rater_when_a_submit_stores_it_in_the_clear(
    live_server: Any, manager: Any, default_questionnaire: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: sealing bypassed (the live server runs in this process, so it sees the patch)
    monkeypatch.setattr(services, "_invitation_claim", _claim_writing_plaintext(copy_deleted=False))
    # when
    trace = cycle_answered_and_closed(live_server.url, manager)
    answering = trace.answering
    submitted = [rater.position for rater in answering]
    (decliner,) = [rater for rater in trace.raters if rater.declines]
    # then: a dump or a base backup taken while the cycle is open holds every answer ...
    answer_tables = {
        "feedback_response": {rater.marker for rater in answering},
        "feedback_decline": {decliner.marker},
    }
    assert trace.tables_while_open == answer_tables
    assert trace.files_while_open == answer_tables
    # ... the WAL names each rater: the record carrying their marker belongs to the
    # transaction that completed their own invitation ...
    for rater in trace.raters:
        assert {record.xid for _, record in trace.wal_hits[rater.marker] if record} == {trace.submit_xid[rater.marker]}
    # ... so do the row versions (the close did not rewrite the answers) ...
    assert {row.xmin for row in trace.responses} == {trace.submit_xid[rater.marker] for rater in answering}
    # ... and the rows and TOAST chunks replay the submission order.
    physical = [trace.position_of(row.comments) for row in trace.responses]
    assert physical == submitted
    chunk_of = {trace.position_of(row.comments): row.toast_chunk_id for row in trace.responses}
    assert sorted(LONG, key=lambda position: chunk_of[position] or 0) == sorted(LONG)


def test_a_plaintext_copy_the_submit_deletes_again_is_invisible_to_a_dump_but_not_to_a_backup_or_the_wal(
    live_server: Any, manager: Any, default_questionnaire: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a subtler mistake — the answer is sealed, but a plaintext copy written on
    # the way (a scratch row, an audit table) is deleted before the submit commits
    monkeypatch.setattr(services, "_invitation_claim", _claim_writing_plaintext(copy_deleted=True))
    # when
    trace = cycle_answered_and_closed(live_server.url, manager)
    # then: no query finds it while the cycle is open ...
    assert trace.tables_while_open == {}
    # ... but the dead row versions are in the relation files a base backup copies ...
    assert trace.files_while_open == {
        "feedback_response": {rater.marker for rater in trace.answering},
        "feedback_decline": {rater.marker for rater in trace.raters if rater.declines},
    }
    # ... and each is in the WAL under the transaction that completed its rater's invitation.
    for rater in trace.raters:
        assert trace.submit_xid[rater.marker] in {record.xid for _, record in trace.wal_hits[rater.marker] if record}
