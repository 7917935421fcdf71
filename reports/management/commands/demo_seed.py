"""Seed the demo organization once; later runs leave existing data untouched."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from surveys.demo import DEMO_PASSWORDS, demo_organization_seed


class Command(BaseCommand):
    help = "Create the demo organization (users, team, cycles, answers, reports) if it does not exist yet."

    def handle(self, *args: Any, **options: Any) -> None:
        organization = demo_organization_seed()
        if organization is None:
            self.stdout.write("Demo data already present; nothing seeded.")
        else:
            self.stdout.write(f"Seeded the demo team {organization.team.name!r}.")
        for username, password in DEMO_PASSWORDS.items():
            self.stdout.write(f"  login: {username} / {password}")
