"""HTML forms for the manager's pages; the rules themselves live in ``services``."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError

from config.text import TextForm
from surveys.models import Cycle, Group, Person, Questionnaire, Subject, Team
from surveys.services import EMAIL_MAX_LENGTH, MAX_ANONYMITY, MAX_NOMINATIONS, MAX_REMINDER_DAYS

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


def form_errors_apply(form: forms.Form, error: ValidationError, *, renames: dict[str, str] | None = None) -> None:
    """Show a service's validation errors next to the form's fields (or above the form)."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, messages in error.message_dict.items():
        field = (renames or {}).get(field, field)
        for message in messages:
            form.add_error(field if field in form.fields else None, message)


class TeamForm(TextForm):
    name = forms.CharField(max_length=200, label="Team name")


class PersonForm(TextForm):
    name = forms.CharField(max_length=200)
    email = forms.EmailField(max_length=EMAIL_MAX_LENGTH)
    reports_to = forms.ModelChoiceField(
        queryset=Person.objects.none(), required=False, label="Reports to", empty_label="— nobody in this team —"
    )

    def __init__(self, *args: Any, team: Team, person: Person | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        people = team.people.order_by("name")
        if person is not None:
            people = people.exclude(pk=person.pk)
        cast(forms.ModelChoiceField, self.fields["reports_to"]).queryset = people


class PeopleImportForm(TextForm):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8, with a header line: name,email,reports_to (the manager's email, optional).",
    )


class CycleForm(TextForm):
    name = forms.CharField(max_length=200)
    deadline = forms.DateTimeField(
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
        input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
    )
    subjects = forms.ModelMultipleChoiceField(
        queryset=Person.objects.none(), widget=forms.CheckboxSelectMultiple, label="People to review"
    )
    questionnaire = forms.ModelChoiceField(queryset=Questionnaire.objects.all(), empty_label=None)
    anonymity_min = forms.IntegerField(
        initial=3,
        max_value=MAX_ANONYMITY,
        label="Anonymity minimum (k)",
        help_text="Peers, direct reports and outside raters count only with at least this many answers per question.",
    )
    comment_min = forms.IntegerField(
        required=False,
        max_value=MAX_ANONYMITY,
        label="Minimum for comments",
        help_text="Optional; at least the anonymity minimum.",
    )
    nomination_mode = forms.ChoiceField(choices=Cycle.NominationMode.choices, initial=Cycle.NominationMode.MANAGER)
    nomination_min = forms.IntegerField(
        initial=3, min_value=0, max_value=MAX_NOMINATIONS, label="Minimum raters per group"
    )
    nomination_max = forms.IntegerField(
        initial=8, min_value=1, max_value=MAX_NOMINATIONS, label="Maximum raters per group"
    )
    reminder_days_before = forms.IntegerField(
        initial=2,
        min_value=0,
        max_value=MAX_REMINDER_DAYS,
        label="Reminder (days before the deadline)",
        help_text="Non-responders get one reminder then.",
    )

    def __init__(self, *args: Any, team: Team, cycle: Cycle | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelMultipleChoiceField, self.fields["subjects"]).queryset = team.people.order_by("name")
        if cycle is not None and cycle.status != Cycle.Status.DRAFT:
            # Frozen at launch: the questionnaire, the subjects and how raters were chosen.
            for name in ("subjects", "questionnaire", "nomination_mode", "nomination_min", "nomination_max"):
                del self.fields[name]


class SubjectChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(obj.person.name)


class RaterForm(TextForm):
    subject = SubjectChoiceField(queryset=Subject.objects.none(), label="Person rated")
    email = forms.EmailField(max_length=EMAIL_MAX_LENGTH, label="Rater's email")
    name = forms.CharField(max_length=200, required=False, label="Rater's name")
    group = forms.ChoiceField(choices=Group.choices, initial=Group.OUTSIDE, label="Role")

    def __init__(self, *args: Any, cycle: Cycle, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        subjects = cycle.subjects.select_related("person").order_by("person__name")
        cast(SubjectChoiceField, self.fields["subject"]).queryset = subjects


class NominationForm(TextForm):
    peers = forms.ModelMultipleChoiceField(
        queryset=Person.objects.none(), widget=forms.CheckboxSelectMultiple, required=False, label="Peers"
    )
    others = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        label="People outside the team",
        help_text="One per line: an email address, optionally after the name (Kim Lee, kim@example.com).",
    )

    def __init__(self, *args: Any, peers: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelMultipleChoiceField, self.fields["peers"]).queryset = peers

    def clean_others(self) -> list[tuple[str, str]]:
        """[(name, email)] from the lines typed; the email is the last comma- or space-separated part."""
        entries = []
        for line in self.cleaned_data["others"].splitlines():
            line = line.strip()
            if not line:
                continue
            name, _, email = line.replace("<", " ").replace(">", " ").strip().rpartition(" ")
            if "," in line:
                name, _, email = line.rpartition(",")
            entries.append((name.strip(" ,"), email.strip()))
        return entries
