"""The demo organization seeded by the run command."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import transaction

from surveys.models import Person, Team

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
        team = Team.objects.create(name="Product Engineering", manager=manager)
        people: dict[str, Person] = {}
        for name, email, _ in DEMO_TEAM:
            people[name] = Person.objects.create(team=team, name=name, email=email)
        for name, _, boss in DEMO_TEAM:
            if boss is not None:
                people[name].reports_to = people[boss]
                people[name].save(update_fields=["reports_to"])
    return DemoOrganization(manager=manager, coach=coach, team=team)
