"""Writes for teams, questionnaires, cycles and invitations."""

from __future__ import annotations

import csv
import io
import json
import logging
import smtplib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, OuterRef, Q, Subquery
from django.db.models.functions import Lower
from django.utils import timezone

from config.text import text_problem
from surveys import links
from surveys.emails import invitation_email_build, nomination_email_build
from surveys.models import (
    Cycle,
    Group,
    Invitation,
    InvitationLink,
    Item,
    Nomination,
    OutboundEmail,
    Person,
    Questionnaire,
    Reminder,
    Subject,
    Team,
)
from surveys.selectors import ANONYMOUS, answer_counts
from surveys.signals import CloseRefused, cycle_closed

logger = logging.getLogger(__name__)

DEFAULT_QUESTIONNAIRE_NAME = "Kotter balance"
# The columns' sizes, checked here so that a long value is a message, never a database error.
EMAIL_MAX_LENGTH = 254
NAME_MAX_LENGTH = 200
MIN_ANONYMITY = 2
# Upper bounds for a cycle's settings. The columns are small integers (a larger value
# would not even fit), and no real team reaches these sizes: a k or a nomination range
# above them is a typing mistake that would hide every figure or block every nomination.
MAX_ANONYMITY = 100
MAX_NOMINATIONS = 50
MAX_REMINDER_DAYS = 60
# Emails per Celery task: each task reuses one SMTP connection for its batch.
EMAIL_BATCH_SIZE = 100
REMINDER_MIN_INTERVAL = timedelta(hours=1)
# An email claimed by a worker that then died is handed to the next attempt after this.
EMAIL_CLAIM_TIMEOUT = timedelta(minutes=15)

DEFAULT_QUESTIONNAIRE_FILE = Path(__file__).resolve().parent / "questionnaires" / "kotter-balance-v1.json"


def questionnaire_load(*, data: dict[str, Any], apps: Apps = global_apps) -> Questionnaire:
    """Create a questionnaire version from its JSON description (see ``questionnaires/``).

    Loading the same name and version again returns the existing version untouched.
    ``apps`` lets the data migration run this with its historical models.
    """
    questionnaire_model = apps.get_model("surveys", "Questionnaire")
    dimension_model = apps.get_model("surveys", "Dimension")
    item_model = apps.get_model("surveys", "Item")
    with transaction.atomic():
        questionnaire, created = questionnaire_model.objects.get_or_create(
            name=data["name"],
            version=data["version"],
            defaults={"description": data.get("description", "")},
        )
        if not created:
            return questionnaire
        items = []
        for position, spec in enumerate(data["dimensions"], start=1):
            dimension = dimension_model.objects.create(
                questionnaire=questionnaire,
                side=spec["side"],
                key=spec["key"],
                name=spec["name"],
                description=spec.get("description", ""),
                pair=spec["pair"],
                position=position,
            )
            items += [
                item_model(dimension=dimension, code=f"{spec['key']}-{number}", text=text, position=number)
                for number, text in enumerate(spec["items"], start=1)
            ]
        item_model.objects.bulk_create(items)
    return questionnaire


def questionnaire_load_file(*, path: Path, apps: Apps = global_apps) -> Questionnaire:
    return questionnaire_load(data=json.loads(path.read_text(encoding="utf-8")), apps=apps)


def questionnaire_copy(*, questionnaire: Questionnaire) -> Questionnaire:
    """The next version of a questionnaire, with the same dimensions and items, to edit freely."""
    with transaction.atomic():
        latest = Questionnaire.objects.filter(name=questionnaire.name).order_by("-version").first()
        assert latest is not None
        copy = Questionnaire.objects.create(
            name=questionnaire.name,
            version=latest.version + 1,
            description=questionnaire.description,
        )
        for dimension in questionnaire.dimensions.prefetch_related("items"):
            items = list(dimension.items.all())
            dimension.pk = None
            dimension.questionnaire = copy
            dimension.save()
            for item in items:
                item.pk = None
                item.dimension = dimension
            Item.objects.bulk_create(items)
    return copy


def invitation_link_create(*, invitation: Invitation) -> str:
    """A new secret survey link for ``invitation``; returns the raw token, which is never stored.

    Call it while composing the email that carries the link: only the SHA-256 of the
    token is kept, so the email is the one place the working link exists.
    """
    token = links.token_new()
    InvitationLink.objects.create(invitation=invitation, token_hash=links.token_hash(token))
    return token


def invitation_links_create(*, invitations: list[Invitation]) -> dict[int, str]:
    """Bulk version of ``invitation_link_create``: {invitation id: raw token}, one insert."""
    tokens = {invitation.pk: links.token_new() for invitation in invitations}
    InvitationLink.objects.bulk_create(
        [InvitationLink(invitation_id=pk, token_hash=links.token_hash(token)) for pk, token in tokens.items()]
    )
    return tokens


# --- Teams and people ---------------------------------------------------------------------


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
    if problem := _name_problem(name):
        raise ValidationError({"name": problem})
    return name


def team_create(*, manager: Any, name: str) -> Team:
    return Team.objects.create(manager=manager, name=_team_name_validate(name))


def team_update(*, team: Team, name: str) -> Team:
    team.name = _team_name_validate(name)
    team.save(update_fields=["name"])
    return team


def _email_normalize(email: str) -> str:
    return email.strip().lower()


def _email_problem(email: str) -> str | None:
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


def _name_problem(name: str) -> str | None:
    if len(name) > NAME_MAX_LENGTH:
        return f"A name has at most {NAME_MAX_LENGTH} characters (this has {len(name)})."
    return text_problem(name)


def _email_validate(email: str, field: str = "email") -> str:
    email = _email_normalize(email)
    if not email:
        raise ValidationError({field: "Enter an email address."})
    if problem := _email_problem(email):
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
    elif problem := _name_problem(name.strip()):
        errors["name"] = problem
    try:
        email = _email_validate(email)
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

        name, email, boss = cell("name"), _email_normalize(cell("email")), _email_normalize(cell("reports_to"))
        line_errors = []
        if len(row) > len(header):
            line_errors.append(f"{len(row)} values for {len(header)} columns")
        if not name:
            line_errors.append("missing name")
        elif problem := _name_problem(name):
            line_errors.append(f"name: {problem}")
        if not email:
            line_errors.append("missing email")
        else:
            if problem := _email_problem(email):
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


# --- Cycles -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RaterSpec:
    """One rater to ask about one subject (used by the bulk assignment)."""

    subject: Subject
    group: str
    email: str
    name: str = ""
    person: Person | None = None
    source: str = Invitation.Source.REPORTING_LINES


def questionnaire_default() -> Questionnaire:
    """The newest version of the default questionnaire."""
    questionnaire = Questionnaire.objects.filter(name=DEFAULT_QUESTIONNAIRE_NAME).order_by("-version").first()
    if questionnaire is None:
        questionnaire = Questionnaire.objects.order_by("-created_at").first()
    if questionnaire is None:
        raise ValidationError({"questionnaire": "No questionnaire exists yet."})
    return questionnaire


def _cycle_settings_validate(values: dict[str, Any]) -> None:
    errors: dict[str, str] = {}
    if "name" in values and not str(values["name"]).strip():
        errors["name"] = "Give the cycle a name."
    elif "name" in values and (problem := _name_problem(str(values["name"]).strip())):
        errors["name"] = problem
    deadline = values.get("deadline")
    if "deadline" in values and (deadline is None or deadline <= timezone.now()):
        errors["deadline"] = "The deadline must be in the future."
    k = values.get("anonymity_min")
    if k is not None and k < MIN_ANONYMITY:
        errors["anonymity_min"] = f"The anonymity minimum can never be below {MIN_ANONYMITY}."
    elif k is not None and k > MAX_ANONYMITY:
        errors["anonymity_min"] = f"The anonymity minimum can be at most {MAX_ANONYMITY}."
    comment_min = values.get("comment_min")
    if comment_min is not None and comment_min > MAX_ANONYMITY:
        errors["comment_min"] = f"The minimum for comments can be at most {MAX_ANONYMITY}."
    elif comment_min is not None and k is not None and comment_min < k:
        errors["comment_min"] = "The minimum for comments cannot be below the anonymity minimum."
    low, high = values.get("nomination_min"), values.get("nomination_max")
    if low is not None and not 0 <= low <= MAX_NOMINATIONS:
        errors["nomination_min"] = f"Choose between 0 and {MAX_NOMINATIONS} raters per group."
    if high is not None and not 1 <= high <= MAX_NOMINATIONS:
        errors["nomination_max"] = f"Choose between 1 and {MAX_NOMINATIONS} raters per group."
    elif low is not None and high is not None and low > high:
        errors["nomination_max"] = "The maximum per group cannot be below the minimum."
    days = values.get("reminder_days_before")
    if days is not None and not 0 <= days <= MAX_REMINDER_DAYS:
        errors["reminder_days_before"] = f"Choose between 0 and {MAX_REMINDER_DAYS} days."
    if errors:
        raise ValidationError(errors)


def _people_validate(*, team: Team, people: list[Person]) -> None:
    if not people:
        raise ValidationError({"subjects": "Choose at least one person to review."})
    if any(person.team_id != team.pk for person in people):
        raise ValidationError({"subjects": "Every subject must be a member of the cycle's team."})


def cycle_create(
    *,
    team: Team,
    by: Any,
    name: str,
    deadline: datetime,
    people: list[Person],
    questionnaire: Questionnaire | None = None,
    anonymity_min: int = 3,
    comment_min: int | None = None,
    nomination_mode: str = Cycle.NominationMode.MANAGER,
    nomination_min: int = 3,
    nomination_max: int = 8,
    reminder_days_before: int = 2,
    default_raters: bool = True,
) -> Cycle:
    """A draft cycle with its subjects and, unless told otherwise, their default raters."""
    values = {
        "name": name,
        "deadline": deadline,
        "anonymity_min": anonymity_min,
        "comment_min": comment_min,
        "nomination_min": nomination_min,
        "nomination_max": nomination_max,
        "reminder_days_before": reminder_days_before,
    }
    _cycle_settings_validate(values)
    _people_validate(team=team, people=people)
    with transaction.atomic():
        cycle = Cycle.objects.create(
            team=team,
            created_by=by,
            name=name.strip()[:200],
            deadline=deadline,
            questionnaire=questionnaire or questionnaire_default(),
            anonymity_min=anonymity_min,
            comment_min=comment_min,
            nomination_mode=nomination_mode,
            nomination_min=nomination_min,
            nomination_max=nomination_max,
            reminder_days_before=reminder_days_before,
        )
        subjects = Subject.objects.bulk_create([Subject(cycle=cycle, person=person) for person in people])
        if default_raters:
            raters_default_assign(cycle=cycle, subjects=subjects)
    return cycle


def _peers_by_default(cycle: Cycle) -> bool:
    # In the nomination mode the subjects choose their peers; the reporting lines still
    # give self, manager and direct reports.
    return cycle.nomination_mode == Cycle.NominationMode.MANAGER


EDITABLE_WHEN_OPEN = {"name", "deadline", "anonymity_min", "comment_min", "reminder_days_before"}
CYCLE_FIELDS = EDITABLE_WHEN_OPEN | {"questionnaire", "nomination_mode", "nomination_min", "nomination_max"}


def cycle_update(*, cycle: Cycle, changes: dict[str, Any]) -> Cycle:
    """Change a cycle's settings; ``changes`` may also hold ``subjects`` (a list of people, draft only).

    Before launch everything can change. Once launched the questionnaire is frozen and the
    subjects are fixed; the anonymity minimum and the comment threshold can still be
    raised, never lowered — that would reveal groups (or quote comments) given on the
    promise of a higher minimum.
    """
    unknown = set(changes) - CYCLE_FIELDS - {"subjects"}
    if unknown:
        raise ValidationError({field: "Unknown field." for field in unknown})
    with transaction.atomic():
        cycle = Cycle.objects.select_for_update().get(pk=cycle.pk)
        if cycle.status == Cycle.Status.CLOSED:
            raise ValidationError({"status": "A closed cycle cannot be changed."})
        launched = cycle.status == Cycle.Status.OPEN
        if cycle.status == Cycle.Status.NOMINATING:
            # The subjects were asked, with these settings, to nominate raters.
            frozen = [field for field in changes if field in ("subjects", "nomination_mode")]
            if frozen:
                raise ValidationError({field: "This cannot change once nominations are open." for field in frozen})
        if launched:
            frozen = [field for field in changes if field not in EDITABLE_WHEN_OPEN]
            if frozen:
                raise ValidationError({field: "This cannot change once the cycle is launched." for field in frozen})
        merged = {field: getattr(cycle, field) for field in CYCLE_FIELDS - {"questionnaire"}}
        merged.update({key: value for key, value in changes.items() if key not in ("subjects", "questionnaire")})
        to_check = dict(merged)
        if "deadline" not in changes:
            to_check.pop("deadline")
        _cycle_settings_validate(to_check)
        _cycle_minimums_guard(cycle=cycle, merged=merged, changes=changes)
        for field, value in merged.items():
            setattr(cycle, field, value.strip()[:200] if field == "name" else value)
        if "questionnaire" in changes:
            if changes["questionnaire"] is None:
                raise ValidationError({"questionnaire": "Choose a questionnaire."})
            cycle.questionnaire = changes["questionnaire"]
        cycle.save()
        if "subjects" in changes:
            _cycle_subjects_set(cycle=cycle, people=list(changes["subjects"]))
    return cycle


def _cycle_minimums_guard(*, cycle: Cycle, merged: dict[str, Any], changes: dict[str, Any]) -> None:
    """Refuse to lower k or the comment threshold once the cycle is launched.

    Raters answer on the promise of the minimums in force (the survey states both).
    Lowering either afterwards would reveal groups, or quote comments, that were given
    on the promise of a larger crowd. The rule does not ask whether anybody has answered
    yet: a refusal that depended on it would tell the manager that some anonymous rater
    had. Clearing the comment minimum counts as lowering it to k, the threshold that then
    applies.
    """
    if cycle.status != Cycle.Status.OPEN:
        return
    new_k = merged["anonymity_min"]
    new_threshold = merged["comment_min"] or new_k
    lowers_k = new_k < cycle.anonymity_min
    lowers_comments = new_threshold < cycle.comment_threshold
    errors: dict[str, str] = {}
    if lowers_k:
        errors["anonymity_min"] = "The anonymity minimum cannot be lowered once the cycle is launched."
    if lowers_comments and (not lowers_k or "comment_min" in changes):
        errors["comment_min"] = (
            f"The minimum for comments cannot go below {cycle.comment_threshold} once the cycle is launched "
            "(leaving it empty would lower it to the anonymity minimum)."
        )
    if errors:
        raise ValidationError(errors)


def _cycle_subjects_set(*, cycle: Cycle, people: list[Person]) -> None:
    _people_validate(team=cycle.team, people=people)
    wanted = {person.pk for person in people}
    cycle.subjects.exclude(person_id__in=wanted).delete()
    present = set(cycle.subjects.values_list("person_id", flat=True))
    added = Subject.objects.bulk_create(
        [Subject(cycle=cycle, person=person) for person in people if person.pk not in present]
    )
    if added:
        raters_default_assign(cycle=cycle, subjects=added)


def cycle_delete(*, cycle: Cycle) -> None:
    deleted, _ = Cycle.objects.filter(pk=cycle.pk, status__in=[Cycle.Status.DRAFT, Cycle.Status.NOMINATING]).delete()
    if not deleted:
        raise ValidationError({"status": "Only a cycle not yet launched can be deleted; close a launched one instead."})


def raters_default_assign(*, cycle: Cycle, subjects: list[Subject]) -> int:
    """Self and manager from the reporting lines, direct reports, and every other teammate as a peer
    (peers only when the manager assigns raters; otherwise the subjects nominate them).

    Loads the team once and inserts in bulk; returns the number of invitations created.
    """
    team_people = list(Person.objects.filter(team_id=cycle.team_id))
    reports: dict[int, list[Person]] = {}
    for person in team_people:
        if person.reports_to_id is not None:
            reports.setdefault(person.reports_to_id, []).append(person)
    by_id = {person.pk: person for person in team_people}
    specs: list[RaterSpec] = []
    for subject in subjects:
        person = by_id.get(subject.person_id) or subject.person
        specs.append(RaterSpec(subject=subject, group=Group.SELF, email=person.email, name=person.name, person=person))
        boss = by_id.get(person.reports_to_id) if person.reports_to_id else None
        if boss is not None:
            specs.append(RaterSpec(subject=subject, group=Group.MANAGER, email=boss.email, name=boss.name, person=boss))
        direct = reports.get(person.pk, [])
        specs += [
            RaterSpec(subject=subject, group=Group.DIRECT_REPORT, email=report.email, name=report.name, person=report)
            for report in direct
        ]
        if not _peers_by_default(cycle):
            continue
        excluded = {person.pk, *(report.pk for report in direct)} | ({boss.pk} if boss else set())
        specs += [
            RaterSpec(subject=subject, group=Group.PEER, email=peer.email, name=peer.name, person=peer)
            for peer in team_people
            if peer.pk not in excluded
        ]
    return raters_bulk_add(cycle=cycle, raters=specs)


def raters_bulk_add(*, cycle: Cycle, raters: Iterable[RaterSpec]) -> int:
    """Insert draft invitations in one statement; a rater already asked about a subject is skipped."""
    invitations = [
        Invitation(
            cycle=cycle,
            subject=spec.subject,
            group=spec.group,
            rater_email=_email_normalize(spec.email),
            rater_name=spec.name[:200],
            rater_person=spec.person,
            source=spec.source,
        )
        for spec in raters
    ]
    created = Invitation.objects.bulk_create(invitations, ignore_conflicts=True, batch_size=2000)
    return len(created)


def _cycle_editable_raters(cycle: Cycle) -> None:
    if cycle.status not in (Cycle.Status.DRAFT, Cycle.Status.NOMINATING):
        raise ValidationError({"status": "Raters can only be changed before the cycle is launched."})


def rater_add(*, cycle: Cycle, subject: Subject, email: str, group: str, name: str = "") -> Invitation:
    _cycle_editable_raters(cycle)
    if subject.cycle_id != cycle.pk:
        raise ValidationError({"subject": "This person is not a subject of this cycle."})
    if group not in Group.values:
        raise ValidationError({"group": f"Choose one of: {', '.join(Group.values)}."})
    if problem := _name_problem(name.strip()):
        raise ValidationError({"name": problem})
    email = _email_validate(email)
    subject_email = subject.person.email.lower()
    if group == Group.SELF and email != subject_email:
        raise ValidationError({"email": "The self rating goes to the subject's own email address."})
    if group != Group.SELF and email == subject_email:
        raise ValidationError({"group": "The subject rates themself in the self group only."})
    if group in (Group.SELF, Group.MANAGER) and subject.invitations.filter(group=group).exists():
        raise ValidationError({"group": f"This subject already has a {Group(group).label.lower()} rater."})
    person = Person.objects.filter(team_id=cycle.team_id, email__iexact=email).first()
    try:
        with transaction.atomic():
            return Invitation.objects.create(
                cycle=cycle,
                subject=subject,
                group=group,
                rater_email=email,
                rater_name=(name.strip() or (person.name if person else ""))[:200],
                rater_person=person,
                source=Invitation.Source.MANAGER,
            )
    except IntegrityError as error:
        raise ValidationError({"email": f"{email} is already asked to rate {subject.person.name}."}) from error


def rater_remove(*, cycle: Cycle, invitation: Invitation) -> None:
    _cycle_editable_raters(cycle)
    Invitation.objects.filter(pk=invitation.pk, cycle=cycle, status=Invitation.Status.DRAFT).delete()


def cycle_launch(*, cycle: Cycle, by: Any) -> bool:
    """Open every draft invitation and queue one email per rater; ``False`` if already launched.

    The status flip is a conditional UPDATE on the cycle row, so a double click, a second
    tab or a retried request finds nothing to flip and sends nothing. Everything else is
    set-based (one UPDATE, one INSERT of the outbox), whatever the cycle's size.
    """
    with transaction.atomic():
        errors: dict[str, str] = {}
        if cycle.deadline <= timezone.now():
            errors["deadline"] = "The deadline has passed; move it before launching."
        if not cycle.subjects.exists():
            errors["subjects"] = "Add at least one subject before launching."
        elif cycle.subjects.filter(invitations__isnull=True).exists():
            errors["raters"] = "Every subject needs at least one rater."
        if errors and cycle.status in (Cycle.Status.DRAFT, Cycle.Status.NOMINATING):
            raise ValidationError(errors)
        now = timezone.now()
        flipped = Cycle.objects.filter(pk=cycle.pk, status__in=[Cycle.Status.DRAFT, Cycle.Status.NOMINATING]).update(
            status=Cycle.Status.OPEN, launched_at=now
        )
        if not flipped:
            return False
        Invitation.objects.filter(cycle=cycle, status=Invitation.Status.DRAFT).update(status=Invitation.Status.OPEN)
        Subject.objects.filter(cycle=cycle).update(
            release_email=Lower(Subquery(Person.objects.filter(pk=OuterRef("person_id")).values("email")[:1]))
        )
        recipients = cycle.invitations.filter(status=Invitation.Status.OPEN).values_list("rater_email", flat=True)
        emails = OutboundEmail.objects.bulk_create(
            [
                OutboundEmail(cycle=cycle, recipient=email, kind=OutboundEmail.Kind.INVITATION)
                for email in sorted(set(recipients))
            ],
            batch_size=2000,
        )
        _emails_enqueue_on_commit([email.pk for email in emails])
    cycle.status, cycle.launched_at = Cycle.Status.OPEN, now
    return True


def _emails_enqueue_on_commit(email_ids: list[int]) -> None:
    # Imported here: the tasks module imports this one.
    from surveys.tasks import emails_send

    batches = [email_ids[start : start + EMAIL_BATCH_SIZE] for start in range(0, len(email_ids), EMAIL_BATCH_SIZE)]
    for batch in batches:
        # robust: with the broker briefly down the launch or reminder has still happened
        # (its emails are recorded, queued); the request must not fail, and the scheduled
        # outbox job queues the emails again (outbound_emails_requeue_stale).
        # A named function, not a partial: Django names the callback when it logs a failure.
        def emails_send_batch(ids: list[int] = batch) -> None:
            emails_send.delay(ids)

        transaction.on_commit(emails_send_batch, robust=True)


# --- Reminders ----------------------------------------------------------------------------


def reminder_send(*, cycle: Cycle, kind: str, by: Any = None) -> Reminder | None:
    """Record a reminder round and queue one email to each rater who still has an open invitation.

    Returns ``None`` when a scheduled round already happened. A manual round is refused
    within an hour of the previous one: raters should not get a stream of emails from a
    double click. A round with nobody left to remind is recorded like any other and sends
    nothing: refusing it would tell the manager that every rater — the lone direct report
    too — had answered or declined.
    """
    with transaction.atomic():
        # The row lock serializes concurrent requests, so the hour check below cannot race.
        cycle = Cycle.objects.select_for_update().get(pk=cycle.pk)
        if cycle.status != Cycle.Status.OPEN:
            raise ValidationError({"status": "Only an open cycle can send reminders."})
        if kind == Reminder.Kind.MANUAL:
            recent = cycle.reminders.filter(created_at__gt=timezone.now() - REMINDER_MIN_INTERVAL).first()
            if recent is not None:
                wait = max(1, int((recent.created_at + REMINDER_MIN_INTERVAL - timezone.now()).total_seconds() // 60))
                raise ValidationError(
                    {"reminder": f"A reminder was sent less than an hour ago; try again in {wait} min."}
                )
        elif cycle.reminders.filter(kind=Reminder.Kind.SCHEDULED).exists():
            return None
        recipients = sorted(
            set(cycle.invitations.filter(status=Invitation.Status.OPEN).values_list("rater_email", flat=True))
        )
        reminder = Reminder.objects.create(cycle=cycle, kind=kind, requested_by=by)
        emails = OutboundEmail.objects.bulk_create(
            [
                OutboundEmail(cycle=cycle, recipient=email, kind=OutboundEmail.Kind.REMINDER, reminder=reminder)
                for email in recipients
            ],
            batch_size=2000,
        )
        _emails_enqueue_on_commit([email.pk for email in emails])
    return reminder


def reminders_send_due() -> list[int]:
    """The scheduled round: open cycles within ``reminder_days_before`` days of their deadline."""
    now = timezone.now()
    due = (
        Cycle.objects.filter(status=Cycle.Status.OPEN, deadline__gt=now)
        .exclude(reminders__kind=Reminder.Kind.SCHEDULED)
        .annotate(
            remind_from=ExpressionWrapper(
                F("deadline") - F("reminder_days_before") * timedelta(days=1), output_field=DateTimeField()
            )
        )
        .filter(remind_from__lte=now)
    )
    sent = []
    for cycle in due:
        try:
            reminder = reminder_send(cycle=cycle, kind=Reminder.Kind.SCHEDULED)
        except IntegrityError:
            continue  # another scheduler run recorded this cycle's round first
        if reminder is not None:
            sent.append(cycle.pk)
    return sent


# --- Closing ------------------------------------------------------------------------------


def cycle_close(*, cycle: Cycle, by: Any) -> bool:
    """Close an open cycle: links die, open invitations expire, answers are unsealed, reports are
    queued; ``False`` if not open.

    A conditional UPDATE on the cycle's status makes a second close (or the scheduler
    racing the manager) a no-op. Raises ``CloseRefused`` (and stays open) when a receiver
    of ``cycle_closed`` cannot do its part, such as answers sealed with a key that is no
    longer configured.
    """
    with transaction.atomic():
        now = timezone.now()
        closed = Cycle.objects.filter(pk=cycle.pk, status=Cycle.Status.OPEN).update(
            status=Cycle.Status.CLOSED, closed_at=now
        )
        if not closed:
            return False
        # The manager's progress, kept as counts: the invitations forget it below. An
        # anonymous count is kept only where the manager could see it (k or more invited).
        subjects = []
        for subject_id, counts in answer_counts(cycle=cycle).items():
            invited, answered = counts[ANONYMOUS]
            final: dict[str, list[int | None]] = {key: list(pair) for key, pair in counts.items()}
            final[ANONYMOUS] = [invited, answered if invited >= cycle.anonymity_min else None]
            subjects.append(Subject(pk=subject_id, final_progress=final))
        Subject.objects.bulk_update(subjects, ["final_progress"], batch_size=1000)
        # Every invitation row becomes "closed", answered or not, and is rewritten in this
        # transaction. Kept, "completed" beside "declined" would say who answered: with one
        # direct report who answered, the one direct-report response is theirs. And
        # PostgreSQL stamps each row version with the id of the transaction that wrote it
        # (xmin): a completed invitation and its sealed answer share the submit's;
        # rewriting every row gives them the close's.
        Invitation.objects.filter(cycle_id=cycle.pk).update(status=Invitation.Status.CLOSED, opened_at=None)
        InvitationLink.objects.filter(invitation__cycle_id=cycle.pk).delete()
        # Each reminder email went to a rater who had not answered at that moment: kept,
        # the rows (with their times) would record who answered late and who never did.
        # Nothing needs them once the cycle is closed. The invitation emails went to
        # everybody invited, and the reminder rounds themselves (``Reminder``) say only
        # when a round happened, so both stay.
        OutboundEmail.objects.filter(cycle_id=cycle.pk, kind=OutboundEmail.Kind.REMINDER).delete()
        cycle.refresh_from_db()
        cycle_closed.send(sender=Cycle, cycle=cycle)
    return True


def cycles_close_due() -> list[int]:
    """Close every open cycle whose deadline has passed; returns their ids."""
    closed = []
    for cycle in Cycle.objects.filter(status=Cycle.Status.OPEN, deadline__lte=timezone.now()):
        try:
            if cycle_close(cycle=cycle, by=None):
                closed.append(cycle.pk)
        except CloseRefused as error:
            # The cycle stays open (its answers are kept) and is tried again next time.
            logger.error("cycle %s could not close: %s", cycle.pk, error)
    return closed


# --- Sending emails -----------------------------------------------------------------------


def _error_is_permanent(error: Exception) -> bool:
    """A 5xx answer means retrying cannot help (unknown mailbox, rejected content)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500
    return False


def _error_describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:500]


def _connection_close(connection: Any) -> None:
    try:
        connection.close()
    except (smtplib.SMTPException, OSError):
        logger.info("email connection did not close cleanly")


def outbound_emails_send(*, email_ids: list[int]) -> list[int]:
    """Send the queued emails among ``email_ids`` over one connection; returns the ids to retry.

    Each email is claimed first (a row lock, then status ``sending``), so two deliveries of
    the same task never send it twice. Its body is composed now, with new links created
    for it, committed before the send: the raw tokens exist only in the message.
    """
    now = timezone.now()
    with transaction.atomic():
        claimable = (
            OutboundEmail.objects.select_for_update(skip_locked=True)
            .filter(id__in=email_ids)
            .filter(
                Q(status=OutboundEmail.Status.QUEUED)
                | Q(status=OutboundEmail.Status.SENDING, claimed_at__lt=now - EMAIL_CLAIM_TIMEOUT)
            )
        )
        ids = list(claimable.values_list("id", flat=True))
        OutboundEmail.objects.filter(id__in=ids).update(
            status=OutboundEmail.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
    if not ids:
        return []
    # The claimed emails not yet handed to the server. If the batch is interrupted (the
    # task's soft time limit), they go back to the queue at once instead of waiting, as
    # ``sending``, for the claim to time out.
    unsent = set(ids)
    retry: list[int] = []
    connection = get_connection()
    opened = False
    try:
        emails = list(OutboundEmail.objects.filter(id__in=ids).select_related("cycle").order_by("id"))
        messages = _invitation_messages([email for email in emails if email.kind != OutboundEmail.Kind.NOMINATION])
        messages.update(
            _nomination_messages([email for email in emails if email.kind == OutboundEmail.Kind.NOMINATION])
        )
        pending = [email for email in emails if email.pk in messages]
        # Nothing left to ask (answered, declined or closed meanwhile): no email at all.
        OutboundEmail.objects.filter(id__in={email.pk for email in emails} - set(messages)).update(
            status=OutboundEmail.Status.SKIPPED
        )
        for email in pending:
            # From here on the server may accept this email whatever happens to us.
            unsent.discard(email.pk)
            message = messages[email.pk]
            try:
                if not opened:
                    connection.open()
                    opened = True
                if connection.send_messages([message]) != 1:
                    raise smtplib.SMTPException("the email backend did not accept the message")
            except (smtplib.SMTPException, OSError) as error:
                permanent = _error_is_permanent(error)
                OutboundEmail.objects.filter(pk=email.pk).update(
                    status=OutboundEmail.Status.FAILED if permanent else OutboundEmail.Status.QUEUED,
                    last_error=_error_describe(error),
                )
                logger.warning(
                    "email %s (%s) not sent, %s: %s",
                    email.pk,
                    email.kind,
                    "permanent" if permanent else "will retry",
                    type(error).__name__,
                )
                if not permanent:
                    retry.append(email.pk)
                # The server may have dropped the session: start the next email on a fresh one.
                _connection_close(connection)
                opened = False
            else:
                OutboundEmail.objects.filter(pk=email.pk).update(
                    status=OutboundEmail.Status.SENT, sent_at=timezone.now(), last_error=""
                )
    except BaseException:
        # Only the rows this claim still holds and never handed over. The email being sent
        # when the interruption came stays ``sending`` (the server may have accepted it):
        # it is taken back only once its claim has timed out, never straight away.
        OutboundEmail.objects.filter(id__in=unsent, status=OutboundEmail.Status.SENDING, claimed_at=now).update(
            status=OutboundEmail.Status.QUEUED
        )
        raise
    finally:
        _connection_close(connection)
    return retry


def _invitation_messages(emails: list[OutboundEmail]) -> dict[int, EmailMultiAlternatives]:
    """Invitation and reminder bodies, each listing the rater's open invitations with new links."""
    if not emails:
        return {}
    invitations: dict[tuple[int, str], list[Invitation]] = {}
    for invitation in Invitation.objects.filter(
        cycle_id__in={email.cycle_id for email in emails},
        rater_email__in={email.recipient for email in emails},
        status=Invitation.Status.OPEN,
    ).select_related("subject__person"):
        invitations.setdefault((invitation.cycle_id, invitation.rater_email), []).append(invitation)
    pending = [email for email in emails if invitations.get((email.cycle_id, email.recipient))]
    # Committed before anything is sent: a rater may click the moment the email arrives.
    with transaction.atomic():
        tokens = invitation_links_create(
            invitations=[
                invitation for email in pending for invitation in invitations[(email.cycle_id, email.recipient)]
            ]
        )
    return {
        email.pk: invitation_email_build(
            kind=email.kind,
            cycle=email.cycle,
            recipient=email.recipient,
            invitations=invitations[(email.cycle_id, email.recipient)],
            tokens=tokens,
        )
        for email in pending
    }


def _nomination_messages(emails: list[OutboundEmail]) -> dict[int, EmailMultiAlternatives]:
    """Nomination requests, each with a new link that replaces any earlier one."""
    if not emails:
        return {}
    nominations = {
        (nomination.subject.cycle_id, nomination.subject.person.email.lower()): nomination
        for nomination in Nomination.objects.filter(
            subject__cycle_id__in={email.cycle_id for email in emails},
            subject__cycle__status=Cycle.Status.NOMINATING,
            subject__person__email__in={email.recipient for email in emails},
        ).select_related("subject__person", "subject__cycle")
    }
    pending = [email for email in emails if (email.cycle_id, email.recipient) in nominations]
    tokens = {}
    for email in pending:
        nomination = nominations[(email.cycle_id, email.recipient)]
        tokens[email.pk] = links.token_new()
        nomination.token_hash = links.token_hash(tokens[email.pk])
    with transaction.atomic():
        Nomination.objects.bulk_update([nominations[(e.cycle_id, e.recipient)] for e in pending], ["token_hash"])
    return {
        email.pk: nomination_email_build(
            nomination=nominations[(email.cycle_id, email.recipient)],
            url=links.nomination_url(tokens[email.pk]),
        )
        for email in pending
    }


def outbound_emails_requeue_stale() -> list[int]:
    """Queue again the emails left ``sending`` past the claim timeout, and those never
    picked up since they were recorded that long ago; returns their ids.

    A worker that dies mid-batch leaves its claimed emails ``sending``; the redelivered
    task cannot claim them yet (the claim is too recent) and ends, so nothing else would
    ever send them. The task's time limit is well below ``EMAIL_CLAIM_TIMEOUT``, so a row
    still ``sending`` after it belongs to no live worker. Only such rows are taken back
    (a conditional UPDATE), so an email already sent is never sent again.
    """
    cutoff = timezone.now() - EMAIL_CLAIM_TIMEOUT
    with transaction.atomic():
        stale = OutboundEmail.objects.select_for_update(skip_locked=True).filter(
            status=OutboundEmail.Status.SENDING, claimed_at__lt=cutoff
        )
        ids = list(stale.values_list("id", flat=True))
        OutboundEmail.objects.filter(id__in=ids, status=OutboundEmail.Status.SENDING, claimed_at__lt=cutoff).update(
            status=OutboundEmail.Status.QUEUED
        )
        # Emails still queued long after they were recorded: their task may never have
        # reached the broker (it was down at commit). Queuing one twice is harmless: only
        # the task that claims it (queued → sending) sends it.
        never_sent = OutboundEmail.objects.filter(
            status=OutboundEmail.Status.QUEUED, created_at__lt=cutoff, claimed_at__isnull=True
        ).values_list("id", flat=True)
        ids += list(never_sent)
        _emails_enqueue_on_commit(ids)
    if ids:
        logger.warning("re-queued %s email(s) left sending by an interrupted worker", len(ids))
    return ids


def outbound_emails_fail(*, email_ids: list[int]) -> int:
    """Give up on emails that kept failing: they show as failed on the manager's cycle page."""
    return OutboundEmail.objects.filter(id__in=email_ids, status=OutboundEmail.Status.QUEUED).update(
        status=OutboundEmail.Status.FAILED
    )


def outbound_emails_retry(*, cycle: Cycle) -> list[int]:
    """Queue the cycle's failed invitation and nomination emails again (the server is back).

    Failed reminders are left alone: their count is never shown (it would say how many
    raters have not answered), and the next reminder round reaches the same raters with
    fresh links anyway.
    """
    with transaction.atomic():
        ids = list(
            OutboundEmail.objects.filter(cycle=cycle, status=OutboundEmail.Status.FAILED)
            .exclude(kind=OutboundEmail.Kind.REMINDER)
            .values_list("id", flat=True)
        )
        OutboundEmail.objects.filter(id__in=ids).update(status=OutboundEmail.Status.QUEUED, last_error="")
        _emails_enqueue_on_commit(ids)
    return ids


# --- Nominations (subjects choose their peers and outside raters) -------------------------


NOMINATED_GROUPS = (Group.PEER, Group.OUTSIDE)


def cycle_nominations_open(*, cycle: Cycle, by: Any) -> bool:
    """Ask every subject to nominate raters; ``False`` if nominations were already opened.

    Like launching, a conditional UPDATE on the cycle's status makes a repeated request
    send nothing.
    """
    if cycle.nomination_mode != Cycle.NominationMode.SUBJECTS:
        raise ValidationError({"nomination_mode": "In this cycle the manager assigns the raters."})
    with transaction.atomic():
        if cycle.deadline <= timezone.now():
            raise ValidationError({"deadline": "The deadline has passed; move it first."})
        flipped = Cycle.objects.filter(pk=cycle.pk, status=Cycle.Status.DRAFT).update(status=Cycle.Status.NOMINATING)
        if not flipped:
            return False
        subjects = list(cycle.subjects.select_related("person"))
        Nomination.objects.bulk_create([Nomination(subject=subject) for subject in subjects], ignore_conflicts=True)
        OutboundEmail.objects.bulk_create(
            [
                OutboundEmail(cycle=cycle, recipient=subject.person.email.lower(), kind=OutboundEmail.Kind.NOMINATION)
                for subject in subjects
            ],
            ignore_conflicts=True,
        )
        queued = OutboundEmail.objects.filter(
            cycle=cycle, kind=OutboundEmail.Kind.NOMINATION, status=OutboundEmail.Status.QUEUED
        )
        _emails_enqueue_on_commit(list(queued.values_list("id", flat=True)))
    cycle.status = Cycle.Status.NOMINATING
    return True


@dataclass(frozen=True)
class OutsideRater:
    email: str
    name: str = ""


def nomination_submit(*, nomination: Nomination, peers: list[Person], others: list[OutsideRater]) -> list[Invitation]:
    """Replace the subject's nominated peers and outside raters (draft invitations) with these.

    The subject may change their list until the manager launches the cycle; the manager
    sees and edits the result on the raters page.
    """
    subject = nomination.subject
    cycle = subject.cycle
    errors: dict[str, str] = {}
    low, high = cycle.nomination_min, cycle.nomination_max
    team_people = {person.pk: person for person in Person.objects.filter(team_id=cycle.team_id)}
    own = team_people.get(subject.person_id) or subject.person
    identified = {own.pk, own.reports_to_id} | {p.pk for p in team_people.values() if p.reports_to_id == own.pk}
    if any(person.pk not in team_people or person.pk in identified for person in peers):
        errors["peers"] = (
            "Choose peers among your teammates (you, your manager and your direct reports are already asked)."
        )
    elif not low <= len(peers) <= high:
        errors["peers"] = f"Choose between {low} and {high} peers (you chose {len(peers)})."
    emails = [_email_normalize(other.email) for other in others]
    team_emails = {person.email.lower() for person in team_people.values()}
    bad = [email for email in emails if _email_problem(email)]
    if bad:
        errors["others"] = f"Not a valid email address: {', '.join(bad)}."
    elif len(set(emails)) != len(emails):
        errors["others"] = "An email address appears twice."
    elif team_emails & set(emails):
        errors["others"] = "Teammates are nominated as peers, not as outside raters: " + ", ".join(
            sorted(team_emails & set(emails))
        )
    elif len(emails) > high:
        errors["others"] = f"Nominate at most {high} outside raters (you gave {len(emails)})."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        locked = Cycle.objects.select_for_update().get(pk=cycle.pk)
        if locked.status != Cycle.Status.NOMINATING:
            raise ValidationError({"__all__": "Nominations for this review are closed."})
        Invitation.objects.filter(subject=subject, group__in=NOMINATED_GROUPS, status=Invitation.Status.DRAFT).delete()
        raters_bulk_add(
            cycle=cycle,
            raters=[
                RaterSpec(
                    subject=subject,
                    group=Group.PEER,
                    email=person.email,
                    name=person.name,
                    person=person,
                    source=Invitation.Source.NOMINATED,
                )
                for person in peers
            ]
            + [
                RaterSpec(
                    subject=subject,
                    group=Group.OUTSIDE,
                    email=other.email,
                    name=other.name,
                    source=Invitation.Source.NOMINATED,
                )
                for other in others
            ],
        )
        Nomination.objects.filter(pk=nomination.pk).update(submitted_at=timezone.now())
    nomination.submitted_at = timezone.now()
    return list(subject.invitations.filter(group__in=NOMINATED_GROUPS))
