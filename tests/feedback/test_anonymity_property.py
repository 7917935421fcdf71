"""Property: no unsealed response (or decline) row can be joined back to its invitation by any column."""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from typing import Any

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback.services import answers_unseal, response_decline, response_submit
from surveys.models import ANONYMOUS_GROUPS, Cycle, Group, Invitation
from surveys.services import invitation_link_create
from surveys.vocabulary import SMALL_GROUPS
from tests.factories import CycleFactory, PersonFactory, SubjectFactory, default_questionnaire
from tests.feedback.helpers import item_codes

pytestmark = pytest.mark.django_db

RATING = st.sampled_from([1, 2, 3, 4, 5, None])
COMMENT = st.sampled_from(["", "Plans well.", "<b>Inspires</b> & listens", "Start sharing the roadmap."])
DECLINE = -1


def _rows(sql: str, params: list[Any]) -> list[dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [column.name for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _schema_columns(table: str) -> dict[str, str]:
    rows = _rows("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s", [table])
    return {row["column_name"]: row["data_type"] for row in rows}


def _foreign_tables(table: str) -> set[str]:
    rows = _rows(
        "SELECT confrelid::regclass::text AS target FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
        [table],
    )
    return {row["target"] for row in rows}


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("feedback_response", {"id", "cycle_id", "subject_id", "group", "ratings", "comments"}),
        ("feedback_decline", {"id", "cycle_id", "subject_id", "group", "reason"}),
    ],
)
def test_the_tables_have_no_column_that_could_lead_to_a_rater(table: str, columns: set[str]) -> None:
    schema = _schema_columns(table)
    assert set(schema) == columns
    assert schema["id"] == "uuid"
    assert not [name for name, kind in schema.items() if "time" in kind or kind in ("date", "interval")]
    assert _foreign_tables(table) == {"surveys_cycle", "surveys_subject"}


raters = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=1),  # which subject
        st.sampled_from([Group.SELF, Group.MANAGER, Group.PEER, Group.PEER, Group.DIRECT_REPORT, Group.OUTSIDE]),
        st.sampled_from([0, 0, 1, 2, DECLINE]),  # which answer pattern, or decline
        st.booleans(),  # opened the link before answering
    ),
    min_size=2,
    max_size=9,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raters=raters, data=st.data())
def test_no_stored_row_can_be_joined_back_to_its_invitation(
    raters: list[tuple[int, str, int, bool]], data: Any
) -> None:
    with transaction.atomic():
        _check_example(raters, data)
        transaction.set_rollback(True)


def _check_example(raters: list[tuple[int, str, int, bool]], data: Any) -> None:
    # given: a cycle with two subjects and the drawn raters
    cycle = CycleFactory(status=Cycle.Status.OPEN, questionnaire=default_questionnaire())
    codes = item_codes(cycle)
    patterns = [
        {
            "ratings": dict(
                zip(codes, data.draw(st.lists(RATING, min_size=len(codes), max_size=len(codes))), strict=True)
            ),
            "comments": {"management": data.draw(COMMENT), "start_doing": data.draw(COMMENT)},
        }
        for _ in range(3)
    ]
    subjects = [SubjectFactory(cycle=cycle) for _ in range(2)]
    invitations: list[tuple[Invitation, int]] = []
    for number, (subject_index, group, pattern, opened) in enumerate(raters):
        rater = PersonFactory(team=cycle.team) if number % 2 else None
        invitation = Invitation.objects.create(
            cycle=cycle,
            subject=subjects[subject_index],
            group=group,
            rater_name=f"Rater {number}",
            rater_email=f"rater{number}@example.test",
            rater_person=rater,
            status=Invitation.Status.OPEN,
        )
        invitation_link_create(invitation=invitation)
        if opened:
            Invitation.objects.filter(pk=invitation.pk).update(opened_at=invitation.created_at)
        invitations.append((invitation, pattern))

    # when: they answer in any order
    order = data.draw(st.permutations(range(len(invitations))))
    for index in order:
        invitation, pattern = invitations[index]
        if pattern == DECLINE:
            response_decline(invitation_id=invitation.pk, reason="Not this time.")
        else:
            response_submit(invitation_id=invitation.pk, answers=patterns[pattern])
    # and the answers are unsealed, as the close does
    answers_unseal(cycle_id=cycle.pk)

    # then
    invitation_rows = _rows(
        "SELECT i.*, l.id AS link_id, l.token_hash, l.created_at AS link_created_at "
        "FROM surveys_invitation i JOIN surveys_invitationlink l ON l.invitation_id = i.id WHERE i.cycle_id = %s",
        [cycle.pk],
    )
    invitation_values = {_text(value) for row in invitation_rows for value in row.values()} - {""}
    # An anonymous group with fewer than k answers is stored as "smaller groups", and so
    # is every anonymous decline: what a stored row can point at is that wider set.
    answered = Counter((i.subject_id, i.group) for i, pattern in invitations if pattern != DECLINE)

    def stored_group(row: dict[str, Any]) -> str:
        if row["group"] not in ANONYMOUS_GROUPS:
            return str(row["group"])
        if row["status"] == "declined" or answered[(row["subject_id"], row["group"])] < cycle.anonymity_min:
            return SMALL_GROUPS
        return str(row["group"])

    for table, status in (("feedback_response", "completed"), ("feedback_decline", "declined")):
        stored = _rows(f"SELECT * FROM {table} WHERE cycle_id = %s", [cycle.pk])  # noqa: S608 — constant table names
        candidates = [{**row, "stored_group": stored_group(row)} for row in invitation_rows if row["status"] == status]
        _assert_unlinkable(stored, candidates, invitation_values)

    # Rows hold the answers and the values the whole group shares — nothing else.
    expected = Counter(
        (
            invitation.subject_id,
            stored_group({"group": invitation.group, "status": "completed", "subject_id": invitation.subject_id}),
            _canonical(patterns[pattern]["ratings"]),
            _canonical(
                {"management": "", "leadership": "", "keep_doing": "", "start_doing": ""}
                | patterns[pattern]["comments"]
            ),
        )
        for invitation, pattern in invitations
        if pattern != DECLINE
    )
    stored_rows = _rows("SELECT * FROM feedback_response WHERE cycle_id = %s", [cycle.pk])
    actual = Counter(
        (row["subject_id"], row["group"], _canonical(_json(row["ratings"])), _canonical(_json(row["comments"])))
        for row in stored_rows
    )
    assert actual == expected
    by_content: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in stored_rows:
        by_content[(row["subject_id"], row["group"], _text(row["ratings"]), _text(row["comments"]))].append(row)
    for same in by_content.values():
        # Same group, same answers: the rows are identical but for the random id.
        assert len({tuple((k, _text(v)) for k, v in row.items() if k != "id") for row in same}) == 1


def _json(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)


def _canonical(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True)


def _assert_unlinkable(
    stored: list[dict[str, Any]], invitation_rows: list[dict[str, Any]], invitation_values: set[str]
) -> None:
    """No column of a stored row narrows its raters down to fewer than its whole group."""
    buckets: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in stored:
        buckets[(row["cycle_id"], row["subject_id"], row["group"])].append(row)
    for row in stored:
        identifier = uuid.UUID(str(row["id"]))
        # Random (version 4), not a sequence, not built from anything of the invitation.
        assert identifier.version == 4
        assert str(identifier) not in invitation_values
        assert str(identifier.int) not in invitation_values
        assert identifier.hex not in invitation_values
    for (cycle_id, subject_id, group), rows in buckets.items():
        candidates = [
            invitation
            for invitation in invitation_rows
            if (invitation["cycle_id"], invitation["subject_id"], invitation["stored_group"])
            == (cycle_id, subject_id, group)
        ]
        assert len(candidates) == len(rows)
        for column in rows[0]:
            for invitation_column in (name for name in candidates[0] if name != "stored_group"):
                # Which of the group's invitations does this column point at, for each row?
                # If two rows of one group pointed at different invitations, the column
                # would tell the raters apart.
                pointed = {
                    frozenset(
                        invitation["id"]
                        for invitation in candidates
                        if _text(invitation[invitation_column]) == _text(row[column])
                    )
                    for row in rows
                }
                assert len(pointed) == 1, (column, invitation_column)
