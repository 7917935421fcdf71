"""Seed the demo once, then print the logins and fresh survey links to try.

Seeding goes through the product's own services — launch, submit, close — so the demo
shows exactly what works: emails in the outbox, anonymous answers, report jobs queued
for the worker when the autumn cycle closes.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from feedback.demo import demo_answers_seed
from reports.demo import demo_reports_seed
from surveys.demo import DEMO_PASSWORDS, DEMO_TEAM_NAME, demo_cycles_seed, demo_organization_seed, demo_survey_links
from surveys.models import Cycle
from surveys.services import cycle_close


class Command(BaseCommand):
    help = "Create the demo organization (users, team, cycles, answers, reports) if it does not exist yet."

    def handle(self, *args: Any, **options: Any) -> None:
        organization = demo_organization_seed()
        if organization is None:
            self.stdout.write("Demo data already present; nothing seeded.")
        else:
            cycles = demo_cycles_seed(organization=organization)
            answered = demo_answers_seed(cycle=cycles.closed_cycle, share=0.9, seed=1)
            answered += demo_answers_seed(cycle=cycles.open_cycle, share=0.4, seed=2)
            # The coach follows both cycles: the open one's reports are read once it closes.
            demo_reports_seed(cycle=cycles.closed_cycle, coach=organization.coach)
            demo_reports_seed(cycle=cycles.open_cycle, coach=organization.coach)
            cycle_close(cycle=cycles.closed_cycle, by=organization.manager)
            self.stdout.write(
                f"Seeded the demo team {organization.team.name!r}: {answered} answers, "
                f"{cycles.closed_cycle.name!r} closed (its reports are being built), "
                f"{cycles.open_cycle.name!r} open."
            )
        for username, password in DEMO_PASSWORDS.items():
            self.stdout.write(f"  login: {username} / {password}")
        open_cycle = Cycle.objects.filter(team__name=DEMO_TEAM_NAME, status=Cycle.Status.OPEN).first()
        if open_cycle is not None:
            self.stdout.write(f"Survey links to try ({open_cycle.name}; each run prints new ones):")
            for description, url in demo_survey_links(cycle=open_cycle, count=2):
                self.stdout.write(f"  {description}: {url}")
