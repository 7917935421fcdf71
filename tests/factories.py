"""factory_boy factories for the domain models."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from feedback.models import Response
from surveys.models import Cycle, Group, Invitation, Person, Questionnaire, Subject, Team
from surveys.services import DEFAULT_QUESTIONNAIRE_FILE, questionnaire_load_file


def default_questionnaire() -> Questionnaire:
    """The Kotter questionnaire loaded by the data migration.

    Loaded again when missing: a transactional test empties every table when it ends,
    data migrations included.
    """
    return questionnaire_load_file(path=DEFAULT_QUESTIONNAIRE_FILE)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.test")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password("correct horse battery staple")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")
    manager = factory.SubFactory(UserFactory)


class PersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Person

    team = factory.SubFactory(TeamFactory)
    name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"person{n}@example.test")


class CycleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cycle

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"Review cycle {n}")
    created_by = factory.LazyAttribute(lambda cycle: cycle.team.manager)
    questionnaire = factory.LazyFunction(default_questionnaire)
    deadline = factory.LazyFunction(lambda: timezone.now() + timedelta(days=14))


class SubjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subject

    cycle = factory.SubFactory(CycleFactory)
    person = factory.SubFactory(PersonFactory, team=factory.SelfAttribute("..cycle.team"))


class InvitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invitation

    subject = factory.SubFactory(SubjectFactory)
    cycle = factory.SelfAttribute("subject.cycle")
    group = Group.PEER
    rater_name = factory.Faker("name")
    rater_email = factory.Sequence(lambda n: f"rater{n}@example.test")


class ResponseFactory(factory.django.DjangoModelFactory):
    """An anonymous response; ``ratings`` defaults to every item of the cycle's questionnaire rated 3."""

    class Meta:
        model = Response

    subject = factory.SubFactory(SubjectFactory)
    cycle = factory.SelfAttribute("subject.cycle")
    group = Group.PEER
    ratings = factory.LazyAttribute(
        lambda response: dict.fromkeys(response.cycle.questionnaire.dimensions.values_list("items__code", flat=True), 3)
    )
    comments = factory.LazyFunction(dict)
