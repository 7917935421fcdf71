"""Anonymous answers: sealed while their cycle is open, then stored with no path back to the rater."""

from __future__ import annotations

import uuid

from django.db import models

from surveys.models import Cycle, Group, Subject
from surveys.vocabulary import FIGURE_LABELS, NOMINATED_OUTSIDE, SMALL_GROUPS

# An answer's group: the rater's, or "smaller groups" for a group with fewer than k answers.
STORED_GROUP_CHOICES = [
    *Group.choices,
    (SMALL_GROUPS, FIGURE_LABELS[SMALL_GROUPS]),
    (NOMINATED_OUTSIDE, "Outside raters the subject nominated"),
]


class SealedAnswer(models.Model):
    """A submitted answer (or a decline's reason) while its cycle is open: ciphertext only.

    The row holds the cycle and an encrypted, fixed-size blob (``feedback.sealing``) and
    nothing else — not the subject, the group, a time or a sequence — because the submit
    transaction that writes it also marks its rater's invitation answered, and every
    trace of that transaction pairs the two. The close opens the cycle's blobs and writes
    them as ``Response`` and ``Decline`` rows in one shuffled batch, then deletes these.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="sealed_answers")
    ciphertext = models.BinaryField()

    class Meta:
        ordering = ["id"]  # random, not submission order

    def __str__(self) -> str:
        return f"sealed answer in cycle {self.cycle_id}"


class Response(models.Model):
    """One rater's answers about one subject, written when the cycle closes.

    Deliberately absent: any key, sequence or time that leads back to the invitation or
    the rater. The primary key is random (UUID4), not a sequence that would follow
    submission order, and no submission time is stored at all. The rows of a cycle are
    all written by its close, in shuffled order (see ``SealedAnswer``).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="responses")
    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="responses")
    group = models.CharField(max_length=20, choices=STORED_GROUP_CHOICES)
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
    """A rater's reason for declining, as anonymous as a response and written at close like one.

    Only declines that gave a reason have a row: that a rater declined is on their
    invitation already.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="declines")
    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="declines")
    group = models.CharField(max_length=20, choices=STORED_GROUP_CHOICES)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]  # random, not submission order (see Response)

    def __str__(self) -> str:
        return f"{self.get_group_display()} decline about {self.subject_id}"
