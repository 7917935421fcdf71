"""Forms for the reports pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from config.text import TextForm
from surveys.models import Cycle, Subject


class SubjectChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.person.name)


class CoachAssignForm(TextForm):
    coach = forms.CharField(label="Coach's username", max_length=150)
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

    def clean_coach(self) -> Any:
        username = self.cleaned_data["coach"].strip()
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise forms.ValidationError("No active user has this username.")
        return user
