"""The demo organization seeded by the run command."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import transaction
from django.utils import timezone

from config import links
from surveys.models import Cycle, Group, Invitation, Person, Team
from surveys.services import cycle_create, cycle_launch, invitation_links_create, rater_add
from surveys.vocabulary import GROUP_ROLES

DEMO_TEAM_NAME = "Product Engineering"

DEMO_PASSWORDS = {
    "admin": "admin-demo-360",
    "manager": "manager-demo-360",
    "coach": "coach-demo-360",
}

# name, email, reports to (by name); the first person leads the team.
DEMO_TEAM = [
    ("Maya Lindqvist", "maya@demo.balance360.test", None),
    ("Jonas Berg", "jonas@demo.balance360.test", "Maya Lindqvist"),
    ("Priya Nair", "priya@demo.balance360.test", "Maya Lindqvist"),
    ("Tomás Ruiz", "tomas@demo.balance360.test", "Maya Lindqvist"),
    ("Aiko Tanaka", "aiko@demo.balance360.test", "Jonas Berg"),
    ("Lena Fischer", "lena@demo.balance360.test", "Jonas Berg"),
    ("Samuel Okafor", "samuel@demo.balance360.test", "Priya Nair"),
    ("Clara Dubois", "clara@demo.balance360.test", "Priya Nair"),
]

# subject, rater's name, rater's email
DEMO_OUTSIDE_RATER = ("Jonas Berg", "Rosa Marín", "rosa@customer.demo.balance360.test")


@dataclass
class DemoOrganization:
    manager: AbstractUser
    coach: AbstractUser
    team: Team


def demo_organization_seed() -> DemoOrganization | None:
    """Create the demo users and team once; ``None`` when they already exist."""
    user_model = get_user_model()
    if user_model.objects.filter(username="manager").exists():
        return None
    with transaction.atomic():
        user_model.objects.create_superuser(
            username="admin", email="admin@demo.balance360.test", password=DEMO_PASSWORDS["admin"]
        )
        manager = user_model.objects.create_user(
            username="manager",
            email="maya.manager@demo.balance360.test",
            password=DEMO_PASSWORDS["manager"],
            first_name="Morgan",
            last_name="Hale",
        )
        coach = user_model.objects.create_user(
            username="coach",
            email="coach@demo.balance360.test",
            password=DEMO_PASSWORDS["coach"],
            first_name="Robin",
            last_name="Achebe",
        )
        team = Team.objects.create(name=DEMO_TEAM_NAME, manager=manager)
        people: dict[str, Person] = {}
        for name, email, _ in DEMO_TEAM:
            people[name] = Person.objects.create(team=team, name=name, email=email)
        for name, _, boss in DEMO_TEAM:
            if boss is not None:
                people[name].reports_to = people[boss]
                people[name].save(update_fields=["reports_to"])
    return DemoOrganization(manager=manager, coach=coach, team=team)


@dataclass
class DemoCycles:
    open_cycle: Cycle
    closed_cycle: Cycle


def demo_cycles_seed(*, organization: DemoOrganization) -> DemoCycles:
    """Two launched cycles on the demo team, every member a subject with the default raters.

    Both go through the normal launch, so their invitation emails are sent like any other.
    The autumn cycle is meant to be closed, but not here: its answers are added first.
    """
    team = organization.team
    people = list(team.people.all())
    closed_cycle = cycle_create(
        team=team,
        by=organization.manager,
        name="Autumn 2025 360",
        deadline=timezone.now() + timedelta(hours=1),
        people=people,
        reminder_days_before=0,
    )
    _outside_rater_add(closed_cycle)
    cycle_launch(cycle=closed_cycle, by=organization.manager)
    open_cycle = cycle_create(
        team=team,
        by=organization.manager,
        name="Spring 2026 360",
        deadline=timezone.now() + timedelta(days=14),
        people=people,
    )
    _outside_rater_add(open_cycle)
    cycle_launch(cycle=open_cycle, by=organization.manager)
    return DemoCycles(open_cycle=open_cycle, closed_cycle=closed_cycle)


def _outside_rater_add(cycle: Cycle) -> None:
    # A customer of Jonas's, added by the manager by hand: his report tells the coach so.
    subject_name, name, email = DEMO_OUTSIDE_RATER
    subject = cycle.subjects.select_related("person").get(person__name=subject_name)
    rater_add(cycle=cycle, subject=subject, email=email, name=name, group=Group.OUTSIDE)


def demo_survey_links(*, cycle: Cycle, count: int = 2) -> list[tuple[str, str]]:
    """(description, url) for ``count`` open invitations of different groups, with fresh links.

    For a developer trying the survey from the run command's output; each call creates
    new links (earlier ones keep working until the cycle closes).
    """
    chosen: list[Invitation] = []
    invitations = Invitation.objects.filter(cycle=cycle, status=Invitation.Status.OPEN).select_related(
        "subject__person"
    )
    for group in (Group.SELF, Group.PEER, Group.MANAGER, Group.DIRECT_REPORT, Group.OUTSIDE):
        if len(chosen) >= count:
            break
        invitation = invitations.filter(group=group).order_by("subject__person__name", "rater_email").first()
        if invitation is not None:
            chosen.append(invitation)
    with transaction.atomic():
        tokens = invitation_links_create(invitations=chosen)
    return [(_link_description(invitation), links.survey_url(tokens[invitation.pk])) for invitation in chosen]


def _link_description(invitation: Invitation) -> str:
    rater = invitation.rater_name or invitation.rater_email
    if invitation.group == Group.SELF:
        return f"{rater} rating themself (self-assessment)"
    return f"{rater} rating {invitation.subject.person.name} {GROUP_ROLES[invitation.group]}"
