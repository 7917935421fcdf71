"""Forms for the reports pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from config.text import TextForm
from reports.selectors import coach_candidates
from surveys.models import Cycle, Subject


class SubjectChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.person.name)


class CoachChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        full_name = obj.get_full_name()
        return f"{full_name} ({obj.get_username()})" if full_name else str(obj.get_username())


class CoachAssignForm(TextForm):
    # Picked from the users who are coaches, by username (the API takes the username too).
    coach = CoachChoiceField(
        queryset=get_user_model().objects.none(),
        to_field_name="username",
        label="Coach",
        empty_label="— choose a coach —",
        error_messages={"invalid_choice": "Choose one of the coaches listed."},
    )
    subject = SubjectChoiceField(
        queryset=Subject.objects.none(),
        required=False,
        empty_label="Every person in this cycle",
        label="Coachee",
    )

    def __init__(self, *args: Any, cycle: Cycle, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        subject_field = self.fields["subject"]
        assert isinstance(subject_field, SubjectChoiceField)
        subject_field.queryset = Subject.objects.filter(cycle=cycle).select_related("person")
        coach_field = self.fields["coach"]
        assert isinstance(coach_field, CoachChoiceField)
        coach_field.queryset = coach_candidates(cycle=cycle)
