from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from surveys import services
from surveys.models import Person, Team
from surveys.services import people as people_services
from tests.factories import TeamFactory
from tests.surveys.helpers import person

pytestmark = pytest.mark.django_db


def test_person_email_is_stored_lower_cased(team: Team) -> None:
    created = services.person_create(team=team, name="Eve", email="  Eve.Smith@Example.TEST ")
    assert created.email == "eve.smith@example.test"


@pytest.mark.parametrize(
    ("name", "email", "field"),
    [
        ("", "x@example.test", "name"),
        ("Eve", "", "email"),
        ("Eve", "not-an-email", "email"),
    ],
)
def test_person_create_rejects_bad_input_naming_the_field(team: Team, name: str, email: str, field: str) -> None:
    with pytest.raises(ValidationError) as error:
        services.person_create(team=team, name=name, email=email)
    assert field in error.value.message_dict


def test_person_email_is_unique_in_the_team_whatever_the_case(team: Team) -> None:
    ann = person(team, "Ann")
    with pytest.raises(ValidationError) as error:
        services.person_create(team=team, name="Other Ann", email=ann.email.upper())
    assert "already in this team" in error.value.message_dict["email"][0]


def test_manager_must_be_in_the_same_team(team: Team, manager: Any) -> None:
    stranger = services.person_create(team=TeamFactory(manager=manager), name="X", email="x@example.test")
    with pytest.raises(ValidationError) as error:
        services.person_create(team=team, name="Eve", email="eve@example.test", reports_to=stranger)
    assert "same team" in error.value.message_dict["reports_to"][0]


def test_reporting_lines_cannot_loop(team: Team) -> None:
    lead, ann = person(team, "Lead"), person(team, "Ann")
    with pytest.raises(ValidationError) as error:
        services.person_update(person=lead, name=lead.name, email=lead.email, reports_to=ann)
    assert "loop" in error.value.message_dict["reports_to"][0]
    lead.refresh_from_db()
    assert lead.reports_to is None


def test_a_subject_of_a_cycle_cannot_be_removed(open_cycle: Any, team: Team) -> None:
    with pytest.raises(ValidationError):
        services.person_delete(person=person(team, "Ann"))
    assert team.people.filter(name="Ann").exists()


# --- CSV import -----------------------------------------------------------------------------


def test_csv_import_creates_people_and_reporting_lines(team: Team) -> None:
    lead = person(team, "Lead")
    data = (
        "name,email,reports_to\n"
        f"Zoe Boss,ZOE@example.test,{lead.email}\n"
        "Yann,yann@example.test,zoe@example.test\n"
        "Xena,xena@example.test,\n"
    ).encode()
    created = services.people_import_csv(team=team, data=data)
    assert [p.name for p in created] == ["Zoe Boss", "Yann", "Xena"]
    zoe = team.people.get(email="zoe@example.test")
    assert zoe.reports_to == lead
    assert team.people.get(email="yann@example.test").reports_to == zoe
    assert team.people.get(email="xena@example.test").reports_to is None


def test_csv_import_accepts_a_byte_order_mark_and_column_order(team: Team) -> None:
    data = "\ufeffemail,name\nq@example.test,Quinn\n".encode()
    services.people_import_csv(team=team, data=data)
    assert team.people.get(email="q@example.test").name == "Quinn"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("name,email\nNo Mail,\n", ["line 2: missing email"]),
        ("name,email\n,nobody@example.test\n", ["line 2: missing name"]),
        ("name,email\nBad,not-an-email\n", ["line 2: email: 'not-an-email' is not a valid email address."]),
        (
            "name,email\nA,a@example.test\nB,A@example.test\n",
            ["line 3: duplicate email a@example.test (also on line 2)"],
        ),
        (
            "name,email,reports_to\nA,a@example.test,ghost@example.test\n",
            ["line 2: unknown manager ghost@example.test (not in the file nor in the team)"],
        ),
        ("name,email,reports_to\nA,a@example.test,a@example.test\n", ["line 2: a person cannot report to themself"]),
        (
            "name,email,reports_to\nA,a@example.test,b@example.test\nB,b@example.test,a@example.test\n",
            ["line 2: loop in the reporting lines", "line 3: loop in the reporting lines"],
        ),
        (
            "name,mail\nA,a@example.test\n",
            ["line 1: bad header: missing column(s) email; unknown column(s) mail (expected name,email,reports_to)"],
        ),
        ("", ["The file is empty; expected a header line: name,email,reports_to."]),
        ("name,email\n", ["The file has a header but no people."]),
        ("name,email\nA,a@example.test,extra\n", ["line 2: 3 values for 2 columns"]),
    ],
)
def test_csv_error_matrix_rejects_the_whole_file(team: Team, body: str, expected: list[str]) -> None:
    before = team.people.count()
    with pytest.raises(services.CsvImportError) as error:
        services.people_import_csv(team=team, data=body.encode())
    assert error.value.messages() == expected
    assert team.people.count() == before


def test_csv_lists_every_bad_line_and_imports_nothing(team: Team) -> None:
    ann = person(team, "Ann")
    data = (
        "name,email,reports_to\n"
        "Good,good@example.test,\n"
        ",missing.name@example.test,\n"
        f"Clash,{ann.email},\n"
        "Lost,lost@example.test,nobody@example.test\n"
    ).encode()
    with pytest.raises(services.CsvImportError) as error:
        services.people_import_csv(team=team, data=data)
    assert [e.line for e in error.value.errors] == [3, 4, 5]
    assert f"line 4: {ann.email} is already in the team" in error.value.messages()
    assert not Person.objects.filter(email="good@example.test").exists()


def test_csv_with_bad_encoding_names_the_lines(team: Team) -> None:
    data = b"name,email\nGood,good@example.test\n" + "Zoë,zoe@example.test\n".encode("latin-1")
    with pytest.raises(services.CsvImportError) as error:
        services.people_import_csv(team=team, data=data)
    assert error.value.messages() == ["line 3: not valid UTF-8 text (save the file as CSV UTF-8)"]
    assert not Person.objects.filter(email="good@example.test").exists()


def test_csv_import_runs_a_constant_number_of_queries(team: Team, django_assert_max_num_queries: Any) -> None:
    rows = "".join(f"P{n},p{n}@example.test,{'p0@example.test' if n else ''}\n" for n in range(200))
    with django_assert_max_num_queries(8):
        services.people_import_csv(team=team, data=f"name,email,reports_to\n{rows}".encode())
    assert team.people.filter(reports_to__email="p0@example.test").count() == 199


def _racing_validate(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    """The duplicate check passes, then a concurrent request adds the same person before our insert."""
    check = people_services._person_validate

    def check_then_lose_the_race(**kwargs: Any) -> str:
        email = check(**kwargs)
        Person.objects.create(team=team, name="Added in another tab", email=email)
        return email

    monkeypatch.setattr(people_services, "_person_validate", check_then_lose_the_race)


def test_a_concurrent_duplicate_person_is_a_field_error(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    _racing_validate(team, monkeypatch)
    with pytest.raises(ValidationError) as error:
        services.person_create(team=team, name="Eve", email="Eve@Example.test")
    assert error.value.message_dict == {"email": ["eve@example.test is already in this team."]}
    # the savepoint kept the surrounding transaction usable
    assert list(Person.objects.filter(team=team, email="eve@example.test").values_list("name", flat=True)) == [
        "Added in another tab"
    ]


def test_a_concurrent_duplicate_through_the_api_is_a_400(team: Team, monkeypatch: pytest.MonkeyPatch, api: Any) -> None:
    _racing_validate(team, monkeypatch)
    response = api.post(f"/api/teams/{team.pk}/people/", {"name": "Eve", "email": "eve@example.test"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"email": ["eve@example.test is already in this team."]}


def test_a_concurrent_email_change_to_a_taken_address_is_a_field_error(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = person(team, "Ann")
    _racing_validate(team, monkeypatch)
    with pytest.raises(ValidationError) as error:
        services.person_update(person=ann, name=ann.name, email="new.ann@example.test", reports_to=ann.reports_to)
    assert error.value.message_dict == {"email": ["new.ann@example.test is already in this team."]}


def test_a_concurrent_csv_import_of_the_same_person_imports_nothing(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the file passes every check, then somebody adds Zoe before the insert
    check = people_services.validate_email

    def validate_then_lose_the_race(value: str) -> None:
        check(value)
        if value == "zoe@example.test" and not Person.objects.filter(email=value).exists():
            Person.objects.create(team=team, name="Zoe (by hand)", email=value)

    monkeypatch.setattr(people_services, "validate_email", validate_then_lose_the_race)
    before = team.people.count()
    # when
    with pytest.raises(services.CsvImportError) as error:
        services.people_import_csv(team=team, data=b"name,email\nYan,yan@example.test\nZoe,zoe@example.test\n")
    # then: a clear message, and the import is all or nothing
    assert "added to the team meanwhile; nothing was imported" in error.value.messages()[0]
    assert team.people.count() == before + 1
    assert not team.people.filter(email="yan@example.test").exists()
