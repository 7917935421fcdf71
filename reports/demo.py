"""Demo data for reports: the demo coach follows each demo cycle, and is one of the Coaches.

The reports themselves are built by the worker once the demo cycle is closed.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, User
from django.contrib.auth.models import Group as UserGroup

from reports.selectors import COACHES_GROUP
from reports.services import coach_assign
from surveys.models import Cycle


def demo_reports_seed(*, cycle: Cycle, coach: AbstractUser) -> None:
    # The project uses Django's own user model; the check narrows the type for the FK.
    if not isinstance(coach, User):
        raise TypeError("coach must be a user")
    coach.groups.add(UserGroup.objects.get_or_create(name=COACHES_GROUP)[0])
    coach_assign(cycle=cycle, coach=coach, by=cycle.created_by)
