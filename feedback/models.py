"""Anonymous answers: stored with no path back to the rater or the invitation."""

from __future__ import annotations

import uuid

from django.db import models

from surveys.models import Cycle, Group, Subject


class Response(models.Model):
    """One rater's answers about one subject.

    Deliberately absent: any key, sequence or time that leads back to the invitation or
    the rater. The primary key is random (UUID4), not a sequence that would follow
    submission order, and no submission time is stored at all — even a date could be
    matched against the day an invitation stopped receiving reminders.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="responses")
    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="responses")
    group = models.CharField(max_length=20, choices=Group.choices)
    # {item code: 1..5, or null for "can't say"}
    ratings = models.JSONField(default=dict)
    # {"management": str, "leadership": str, "keep_doing": str, "start_doing": str}
    comments = models.JSONField(default=dict)

    class Meta:
        # Rows come back in the order of their random ids, never in the physical order
        # they were written in, which follows submission order.
        ordering = ["id"]
        indexes = [models.Index(fields=["subject", "group"], name="response_subject_group")]

    def __str__(self) -> str:
        return f"{self.get_group_display()} response about {self.subject_id}"


class Decline(models.Model):
    """A rater's refusal to answer, with an optional reason, as anonymous as a response."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="declines")
    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="declines")
    group = models.CharField(max_length=20, choices=Group.choices)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]  # random, not submission order (see Response)

    def __str__(self) -> str:
        return f"{self.get_group_display()} decline about {self.subject_id}"
