"""Teams and people, by hand and by all-or-nothing CSV import."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from config.text import text_problem
from surveys.models import (
    Person,
    Team,
)

logger = logging.getLogger(__name__)

# The columns' sizes, checked here so that a long value is a message, never a database error.
EMAIL_MAX_LENGTH = 254
NAME_MAX_LENGTH = 200


class CsvImportError(Exception):
    """A people CSV that was rejected whole; ``errors`` lists every bad line and why."""

    def __init__(self, errors: list[CsvLineError]) -> None:
        super().__init__(f"{len(errors)} bad line(s) in the CSV")
        self.errors = errors

    def messages(self) -> list[str]:
        return [str(error) for error in self.errors]


@dataclass(frozen=True)
class CsvLineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


CSV_COLUMNS = ("name", "email", "reports_to")
CSV_MAX_BYTES = 2 * 1024 * 1024
CSV_MAX_ROWS = 5000


def _team_name_validate(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the team a name."})
    if problem := name_problem(name):
        raise ValidationError({"name": problem})
    return name


def team_create(*, manager: Any, name: str) -> Team:
    return Team.objects.create(manager=manager, name=_team_name_validate(name))


def team_update(*, team: Team, name: str) -> Team:
    team.name = _team_name_validate(name)
    team.save(update_fields=["name"])
    return team


def email_normalize(email: str) -> str:
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    """Why a normalized address cannot be used, or ``None``."""
    if len(email) > EMAIL_MAX_LENGTH:
        return f"An email address has at most {EMAIL_MAX_LENGTH} characters (this has {len(email)})."
    if problem := text_problem(email):
        return problem
    try:
        validate_email(email)
    except ValidationError:
        return f"{email!r} is not a valid email address."
    return None


def name_problem(name: str) -> str | None:
    if len(name) > NAME_MAX_LENGTH:
        return f"A name has at most {NAME_MAX_LENGTH} characters (this has {len(name)})."
    return text_problem(name)


def email_validate(email: str, field: str = "email") -> str:
    email = email_normalize(email)
    if not email:
        raise ValidationError({field: "Enter an email address."})
    if problem := email_problem(email):
        raise ValidationError({field: problem})
    return email


def _reporting_loop(person_id: int | None, boss_id: int | None, bosses: Mapping[int, int | None]) -> bool:
    """Whether making ``person_id`` report to ``boss_id`` closes a loop in the reporting lines."""
    seen: set[int] = set()
    current = boss_id
    while current is not None:
        if current == person_id or current in seen:
            return True
        seen.add(current)
        current = bosses.get(current)
    return False


def _person_validate(*, team: Team, person: Person | None, name: str, email: str, reports_to: Person | None) -> str:
    errors: dict[str, str] = {}
    if not name.strip():
        errors["name"] = "Enter the person's name."
    elif problem := name_problem(name.strip()):
        errors["name"] = problem
    try:
        email = email_validate(email)
    except ValidationError as error:
        errors.update({key: value[0] for key, value in error.message_dict.items()})
    else:
        clash = Person.objects.filter(team=team, email__iexact=email)
        if person is not None:
            clash = clash.exclude(pk=person.pk)
        if clash.exists():
            errors["email"] = f"{email} is already in this team."
    if reports_to is not None:
        if reports_to.team_id != team.pk:
            errors["reports_to"] = "The manager must be a member of the same team."
        elif person is not None:
            bosses = dict(Person.objects.filter(team=team).values_list("id", "reports_to_id"))
            if _reporting_loop(person.pk, reports_to.pk, bosses):
                errors["reports_to"] = "This would make a loop in the reporting lines."
    if errors:
        raise ValidationError(errors)
    return email


PERSON_UNIQUE_EMAIL = "person_unique_email_in_team"


def _unique_violation(error: IntegrityError, constraint: str) -> bool:
    diag = getattr(error.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == constraint


def person_create(*, team: Team, name: str, email: str, reports_to: Person | None = None) -> Person:
    email = _person_validate(team=team, person=None, name=name, email=email, reports_to=reports_to)
    # Two identical requests (a double submit, two tabs) both pass the check above; the
    # unique constraint stops the second insert, which then gets the same answer as if it
    # had come later. The savepoint keeps the caller's transaction usable.
    try:
        with transaction.atomic():
            return Person.objects.create(team=team, name=name.strip()[:200], email=email, reports_to=reports_to)
    except IntegrityError as error:
        if not _unique_violation(error, PERSON_UNIQUE_EMAIL):
            raise
        raise ValidationError({"email": f"{email} is already in this team."}) from error


def person_update(*, person: Person, name: str, email: str, reports_to: Person | None) -> Person:
    email = _person_validate(team=person.team, person=person, name=name, email=email, reports_to=reports_to)
    person.name = name.strip()[:200]
    person.email = email
    person.reports_to = reports_to
    try:
        with transaction.atomic():
            person.save(update_fields=["name", "email", "reports_to"])
    except IntegrityError as error:
        if not _unique_violation(error, PERSON_UNIQUE_EMAIL):
            raise
        raise ValidationError({"email": f"{email} is already in this team."}) from error
    return person


def person_delete(*, person: Person) -> None:
    if person.subjects.exists():
        raise ValidationError({"person": f"{person.name} is a subject of a review cycle and cannot be removed."})
    person.delete()


def _csv_decode(data: bytes) -> tuple[str | None, list[CsvLineError]]:
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        pass
    errors = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            errors.append(CsvLineError(number, "not valid UTF-8 text (save the file as CSV UTF-8)"))
    return None, errors


def people_import_csv(*, team: Team, data: bytes) -> list[Person]:
    """Add people and their reporting lines from a CSV (``name,email,reports_to``).

    ``reports_to`` is the email of the person's manager, in the file or already in the
    team. Any bad line rejects the whole file, listing every bad line and the reason, so
    a team is never left half-imported.
    """
    if len(data) > CSV_MAX_BYTES:
        raise CsvImportError([CsvLineError(0, "The file is larger than 2 MB.")])
    text, errors = _csv_decode(data)
    if text is None:
        raise CsvImportError(errors)
    reader = csv.reader(io.StringIO(text))
    try:
        rows = list(reader)
    except csv.Error as error:
        raise CsvImportError([CsvLineError(reader.line_num, f"unreadable CSV ({error})")]) from error
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise CsvImportError([CsvLineError(0, "The file is empty; expected a header line: name,email,reports_to.")])
    header = [cell.strip().lower() for cell in rows[0]]
    missing = [column for column in ("name", "email") if column not in header]
    unknown = [column for column in header if column and column not in CSV_COLUMNS]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        raise CsvImportError([CsvLineError(1, f"bad header: {'; '.join(problems)} (expected name,email,reports_to)")])
    if len(rows) - 1 > CSV_MAX_ROWS:
        raise CsvImportError([CsvLineError(0, f"More than {CSV_MAX_ROWS} people in one file.")])
    column = {name: header.index(name) for name in CSV_COLUMNS if name in header}
    existing = {person.email.lower(): person for person in Person.objects.filter(team=team)}
    parsed: list[tuple[int, str, str, str]] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue

        def cell(name: str, row: list[str] = row) -> str:
            index = column.get(name)
            return row[index].strip() if index is not None and index < len(row) else ""

        name, email, boss = cell("name"), email_normalize(cell("email")), email_normalize(cell("reports_to"))
        line_errors = []
        if len(row) > len(header):
            line_errors.append(f"{len(row)} values for {len(header)} columns")
        if not name:
            line_errors.append("missing name")
        elif problem := name_problem(name):
            line_errors.append(f"name: {problem}")
        if not email:
            line_errors.append("missing email")
        else:
            if problem := email_problem(email):
                line_errors.append(f"email: {problem}")
            if email in seen:
                line_errors.append(f"duplicate email {email} (also on line {seen[email]})")
            elif email in existing:
                line_errors.append(f"{email} is already in the team")
            seen.setdefault(email, number)
        if boss and boss == email:
            line_errors.append("a person cannot report to themself")
        errors += [CsvLineError(number, message) for message in line_errors]
        parsed.append((number, name, email, boss))
    file_emails = {email for _, _, email, _ in parsed}
    for number, _, email, boss in parsed:
        if boss and boss != email and boss not in file_emails and boss not in existing:
            errors.append(CsvLineError(number, f"unknown manager {boss} (not in the file nor in the team)"))
    if not errors:
        # Loops inside the file (a reports to b, b reports to a) would make reporting lines meaningless.
        bosses = {email: boss or None for _, _, email, boss in parsed}
        for number, _, email, _ in parsed:
            seen_chain: set[str] = set()
            current = bosses.get(email)
            while current is not None and current in bosses and current not in seen_chain:
                if current == email:
                    errors.append(CsvLineError(number, "loop in the reporting lines"))
                    break
                seen_chain.add(current)
                current = bosses.get(current)
    if not parsed and not errors:
        errors.append(CsvLineError(0, "The file has a header but no people."))
    if errors:
        raise CsvImportError(sorted(errors, key=lambda error: error.line))
    try:
        with transaction.atomic():
            created = Person.objects.bulk_create(
                [Person(team=team, name=name[:200], email=email) for _, name, email, _ in parsed]
            )
            by_email = {**existing, **{person.email: person for person in created}}
            to_update = []
            for person, (_, _, _, boss) in zip(created, parsed, strict=True):
                if boss:
                    person.reports_to = by_email[boss]
                    to_update.append(person)
            Person.objects.bulk_update(to_update, ["reports_to"])
    except IntegrityError as error:
        # Somebody added one of these people (or imported the same file) between the check
        # above and this insert: nothing was imported, and uploading again names the line.
        if not _unique_violation(error, PERSON_UNIQUE_EMAIL):
            raise
        raise CsvImportError(
            [
                CsvLineError(
                    0,
                    (
                        "Some of these people were added to the team meanwhile; nothing was imported. "
                        "Upload the file again to see which."
                    ),
                )
            ]
        ) from error
    return created
