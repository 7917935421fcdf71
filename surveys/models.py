"""Teams, people, questionnaires, review cycles and the invitations sent to raters."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower

from config.jobs import Job, JobKind, job_kind_register
from surveys import vocabulary


class Side(models.TextChoices):
    MANAGEMENT = vocabulary.MANAGEMENT, vocabulary.SIDE_LABELS[vocabulary.MANAGEMENT]
    LEADERSHIP = vocabulary.LEADERSHIP, vocabulary.SIDE_LABELS[vocabulary.LEADERSHIP]


class Group(models.TextChoices):
    """A rater's relationship to the person they rate (names in ``surveys.vocabulary``)."""

    SELF = vocabulary.SELF, vocabulary.GROUP_LABELS[vocabulary.SELF]
    MANAGER = vocabulary.MANAGER, vocabulary.GROUP_LABELS[vocabulary.MANAGER]
    PEER = vocabulary.PEER, vocabulary.GROUP_LABELS[vocabulary.PEER]
    DIRECT_REPORT = vocabulary.DIRECT_REPORT, vocabulary.GROUP_LABELS[vocabulary.DIRECT_REPORT]
    OUTSIDE = vocabulary.OUTSIDE, vocabulary.GROUP_LABELS[vocabulary.OUTSIDE]


# Self and manager answers are identified (the survey says so up front); the other three
# groups are anonymous and fall under the minimum group size k.
ANONYMOUS_GROUPS = vocabulary.ANONYMOUS_GROUPS
IDENTIFIED_GROUPS = vocabulary.IDENTIFIED_GROUPS


class Questionnaire(models.Model):
    """One version of a questionnaire: Kotter's six dimensions and their items.

    A version used by a launched cycle is frozen: editing means creating the next
    version (``questionnaire_copy``), so every cycle keeps the items it asked.
    """

    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField(default=1)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="questionnaire_unique_version"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class Dimension(models.Model):
    questionnaire = models.ForeignKey(Questionnaire, on_delete=models.CASCADE, related_name="dimensions")
    side = models.CharField(max_length=20, choices=Side.choices)
    key = models.SlugField(max_length=50, help_text="Stable identifier, e.g. planning_budgeting.")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    # Kotter's pairs: the management dimension and the leadership dimension with the
    # same pair number face each other in the report (planning ↔ direction, …).
    pair = models.PositiveSmallIntegerField()
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["questionnaire", "position"]
        constraints = [
            models.UniqueConstraint(fields=["questionnaire", "key"], name="dimension_unique_key"),
            models.UniqueConstraint(fields=["questionnaire", "side", "pair"], name="dimension_unique_pair"),
        ]

    def __str__(self) -> str:
        return self.name


class Item(models.Model):
    dimension = models.ForeignKey(Dimension, on_delete=models.CASCADE, related_name="items")
    code = models.SlugField(
        max_length=40,
        help_text="Stable identifier used in stored answers, e.g. planning_budgeting-1.",
    )
    text = models.TextField()
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["dimension__position", "position"]
        constraints = [
            models.UniqueConstraint(fields=["dimension", "code"], name="item_unique_code"),
        ]

    def __str__(self) -> str:
        return self.text

    def clean(self) -> None:
        # Answers are stored by item code: two items of one questionnaire sharing a code
        # would count one answer in two dimensions (and let their figures be subtracted).
        if self.dimension_id is None:
            return  # no dimension (or one refused): the form says so next to that field
        clash = Item.objects.filter(dimension__questionnaire_id=self.dimension.questionnaire_id, code=self.code)
        if clash.exclude(pk=self.pk).exists():
            raise ValidationError({"code": "Another item of this questionnaire already has this code."})


class Team(models.Model):
    name = models.CharField(max_length=200)
    manager = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="teams")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Person(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="people")
    name = models.CharField(max_length=200)
    email = models.EmailField()
    reports_to = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="direct_reports"
    )

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "people"
        constraints = [
            models.UniqueConstraint("team", Lower("email"), name="person_unique_email_in_team"),
        ]

    def __str__(self) -> str:
        return self.name


class Cycle(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        NOMINATING = "nominating", "Nominating"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    class NominationMode(models.TextChoices):
        MANAGER = "manager", "Manager assigns raters"
        SUBJECTS = "subjects", "Subjects nominate, manager approves"

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="cycles")
    name = models.CharField(max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    questionnaire = models.ForeignKey(Questionnaire, on_delete=models.PROTECT, related_name="cycles")
    deadline = models.DateTimeField()
    anonymity_min = models.PositiveSmallIntegerField(
        default=3, help_text="Minimum number of anonymous raters behind any figure shown (k)."
    )
    comment_min = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Optional higher minimum before anonymous comments are shown."
    )
    nomination_mode = models.CharField(max_length=20, choices=NominationMode.choices, default=NominationMode.MANAGER)
    nomination_min = models.PositiveSmallIntegerField(default=3)
    nomination_max = models.PositiveSmallIntegerField(default=8)
    reminder_days_before = models.PositiveSmallIntegerField(default=2)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    launched_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The answer counts a manager sees while the cycle is open, as taken at
    # ``progress_counted_at`` and replaced once a whole period old (surveys.selectors).
    progress_counts = models.JSONField(null=True, blank=True, editable=False)
    progress_counted_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(anonymity_min__gte=2), name="cycle_anonymity_min_at_least_2"),
            models.CheckConstraint(
                condition=models.Q(comment_min__isnull=True) | models.Q(comment_min__gte=models.F("anonymity_min")),
                name="cycle_comment_min_not_below_k",
            ),
            models.CheckConstraint(
                condition=models.Q(nomination_max__gte=models.F("nomination_min")),
                name="cycle_nomination_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def comment_threshold(self) -> int:
        return self.comment_min or self.anonymity_min


class Subject(models.Model):
    """A person reviewed in a cycle."""

    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="subjects")
    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="subjects")
    # The person's address when the cycle launched. Their released report goes there and
    # nowhere else: the manager edits people, and an address changed to one of their own
    # would bring them the report with every figure of the raters they chose.
    release_email = models.EmailField(blank=True)
    # The progress the manager saw when the cycle closed (``surveys.selectors.cycle_progress``):
    # the close then forgets which invitation was answered, so the counts are kept here.
    final_progress = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["cycle", "person__name"]
        constraints = [
            models.UniqueConstraint(fields=["cycle", "person"], name="subject_unique_person_in_cycle"),
        ]

    def __str__(self) -> str:
        return str(self.person)


class Invitation(models.Model):
    """One rater asked to rate one subject in one cycle.

    Created in DRAFT when the rater is assigned (editable until launch); launching opens
    every draft invitation of the cycle at once. The invitation knows whether its rater
    answered, but nothing links it to the answer itself (see ``feedback.Response``), and
    it records no completion time that could be matched against one.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        COMPLETED = "completed", "Completed"
        DECLINED = "declined", "Declined"
        EXPIRED = "expired", "Expired"
        # Every invitation of a closed cycle: whether its rater answered is not kept, or a
        # database dump would tie the one response of a small group to its one answerer.
        CLOSED = "closed", "Closed"

    class Source(models.TextChoices):
        """Who put the rater on the list. The coach is told how many anonymous raters the
        manager added by hand: the manager could add people whose answers they know."""

        REPORTING_LINES = "reporting_lines", "From the reporting lines"
        MANAGER = "manager", "Added by the manager"
        NOMINATED = "nominated", "Nominated by the subject"
        UNKNOWN = "unknown", "Not recorded (invited before sources were recorded)"

    # Found by cycle through the indexes below, which all start with it: an index of its own
    # would only be one more to write on every change of an invitation.
    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="invitations", db_index=False)
    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="invitations")
    group = models.CharField(max_length=20, choices=Group.choices)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.REPORTING_LINES)
    # A rater the manager had added by hand and the subject then nominated too is the subject's
    # nomination (``source``, ``group``), as every rater the subject names is, so that nothing
    # the subject reads (their report's counts and notices, what an address they gave receives)
    # tells them the manager had chosen this one. This keeps the group the manager had given
    # (empty for every other rater): given back to the manager, not deleted, if the subject's
    # next list leaves them out (``surveys.services.nominations``).
    manager_added_as = models.CharField(max_length=20, choices=Group.choices, blank=True)
    rater_name = models.CharField(max_length=200, blank=True)
    rater_email = models.EmailField(help_text="Stored lower-cased.")
    rater_person = models.ForeignKey(
        Person, on_delete=models.SET_NULL, null=True, blank=True, related_name="invitations"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    opened_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cycle", "subject", "group", "rater_email"]
        constraints = [
            models.UniqueConstraint(
                fields=["cycle", "subject", "rater_email"], name="invitation_unique_rater_per_subject"
            ),
            # One person, one invitation per subject, whatever addresses they had: a teammate
            # asked twice (at an address since changed, say) would answer twice, and a group of
            # k answers would be fewer than k people.
            models.UniqueConstraint(
                fields=["subject", "rater_person"],
                condition=models.Q(rater_person__isnull=False),
                name="invitation_unique_person_per_subject",
            ),
        ]
        # No index holds the status: a submit's claim, which changes only the status, is then a
        # heap-only update that writes no index entry (the table keeps room on each page for it,
        # migration 0010). Counts by status read the cycle's rows.
        indexes = [
            models.Index(fields=["cycle", "rater_email"], name="invitation_cycle_rater"),
            # Every read of a report looks up whether the reader was asked to rate its person
            # anonymously (reports.selectors._barred): by address, across all cycles.
            models.Index(fields=["rater_email"], name="invitation_rater_email"),
        ]

    def __str__(self) -> str:
        return f"{self.rater_email} → {self.subject}"

    @staticmethod
    def counts_nowhere(*, group: str, source: str) -> bool:
        """Whether the answers of a rater of ``group`` chosen by ``source`` count in no figure:
        those of an outside rater the subject nominated (the subject reads the released report,
        and an address they gave could be their own). ``nominated_outside`` says it in SQL."""
        return group == Group.OUTSIDE and source == Invitation.Source.NOMINATED

    @property
    def is_nominated_outside(self) -> bool:
        return Invitation.counts_nowhere(group=self.group, source=self.source)


def nominated_outside(prefix: str = "") -> models.Q:
    """The invitations ``Invitation.counts_nowhere`` names, as a condition (``prefix`` reaches
    them through a relation, e.g. ``"invitations__"``)."""
    return models.Q(**{f"{prefix}group": Group.OUTSIDE, f"{prefix}source": Invitation.Source.NOMINATED})


class InvitationLink(models.Model):
    """A secret survey link for one invitation; only the SHA-256 of its token is stored.

    Each email creates its own link (the raw token exists only in that email), so a
    reminder can carry a working link without the first email's token ever being kept.
    """

    invitation = models.ForeignKey(Invitation, on_delete=models.CASCADE, related_name="links")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"link for invitation {self.invitation_id}"


class FormerAddress(models.Model):
    """An address an account had before its current one, as invitations store addresses.

    Written by PostgreSQL itself (a trigger on the user table, migration 0014) whenever an
    account's address changes, by any path: the admin, a shell, a bulk update, plain SQL.
    Someone asked to rate a person as an anonymous rater knows their own answer, so they
    never read that person's reports (``reports.selectors``); the invitation keeps the
    address they were asked under, and a new address on their account must not lift that.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="former_addresses")
    address = models.CharField(max_length=254)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "address"], name="former_address_once")]

    def __str__(self) -> str:
        return self.address


class LinkLockout(models.Model):
    """An address refusing every secret link until ``until``: it opened too many that lead nowhere.

    Kept in PostgreSQL, where the survey API's submit reads it in the same statement as
    its link (``config.throttling``); the failures that lead to one are counted in Redis.
    ``address`` is an HMAC of the client's address as the throttle counts it, keyed with the
    secret key (``config.throttling.link_address``): the address cannot be read back from it.
    """

    address = models.CharField(max_length=64, primary_key=True)
    until = models.DateTimeField()

    def __str__(self) -> str:
        return f"links refused until {self.until:%Y-%m-%d %H:%M}"


class Reminder(models.Model):
    """One round of reminders for a cycle: scheduled (once per cycle) or asked for by the manager.

    Recorded before any email goes out; each email of the round is an ``OutboundEmail``
    unique per (reminder, recipient), so a retried task never reminds anybody twice.
    """

    class Kind(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        MANUAL = "manual", "Requested by the manager"

    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="reminders")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["cycle"], condition=models.Q(kind="scheduled"), name="reminder_one_scheduled_per_cycle"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} reminder for {self.cycle}"


class OutboundEmail(Job):
    """The outbox: one row per email to one rater, written before the email is sent.

    The row holds no body: the body carries secret links, so it is composed (with fresh
    links) at send time and never stored.
    """

    class Kind(models.TextChoices):
        INVITATION = "invitation", "Invitation"
        REMINDER = "reminder", "Reminder"
        NOMINATION = "nomination", "Nomination request"
        NOMINATION_APPROVED = "nomination_approved", "Nomination approved"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Nothing left to ask"
        FAILED = "failed", "Failed"

    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="emails")
    recipient = models.EmailField(help_text="Stored lower-cased.")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    reminder = models.ForeignKey(Reminder, on_delete=models.CASCADE, null=True, blank=True, related_name="emails")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["cycle", "recipient"]
        constraints = [
            models.UniqueConstraint(
                fields=["cycle", "recipient"],
                condition=models.Q(kind="invitation"),
                name="outbound_email_one_invitation_per_rater",
            ),
            models.UniqueConstraint(fields=["reminder", "recipient"], name="outbound_email_once_per_reminder"),
            models.CheckConstraint(
                condition=models.Q(kind__in=["invitation", "nomination", "nomination_approved"], reminder__isnull=True)
                | models.Q(kind="reminder", reminder__isnull=False),
                name="outbound_email_reminder_matches_kind",
            ),
            models.UniqueConstraint(
                fields=["cycle", "recipient"],
                condition=models.Q(kind="nomination"),
                name="outbound_email_one_nomination_per_subject",
            ),
            models.UniqueConstraint(
                fields=["cycle", "recipient"],
                condition=models.Q(kind="nomination_approved"),
                name="outbound_email_one_approval_per_subject",
            ),
        ]
        indexes = [
            models.Index(fields=["cycle", "status"], name="outbound_email_cycle_status"),
            models.Index(fields=["status", "not_before"], name="outbound_email_due"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.recipient}"


# Batches of this many emails share one SMTP connection.
EMAIL_BATCH_SIZE = 100

EMAILS = job_kind_register(
    JobKind(
        name="emails",
        model=OutboundEmail,
        task="surveys.emails_send",
        # Six tries over about 15 minutes with the default back-off: a server that
        # greylists (451 for some minutes) or restarts gets time to come back.
        max_attempts=6,
        reason_field="last_error",
        batch_size=EMAIL_BATCH_SIZE,
        running=OutboundEmail.Status.SENDING,
    )
)


class Nomination(models.Model):
    """A subject's turn to choose their own peers and outside raters (``subjects`` nomination mode).

    The subject gets an emailed link (only its SHA-256 is kept; a new email replaces it);
    what they submit becomes draft invitations that the manager reviews, edits if need be,
    and approves before launch. Once approved the list is the manager's: the subject's
    link no longer changes it, and the subject is told by email.

    The subject's page shows the list as the subject sent it (``sent_peer_ids``,
    ``sent_outside``, less the raters the manager removed), not the draft invitations it
    became: those also hold what only the manager chose, which the subject's page must not
    show (a rater both chose is asked once, see ``Invitation.manager_added_as``).
    """

    subject = models.OneToOneField(Subject, on_delete=models.CASCADE, related_name="nomination")
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # The peers (person ids) and outside raters ({"name", "email"}, the address normalized)
    # of the subject's last list, less those the manager removed.
    sent_peer_ids = models.JSONField(default=list, blank=True, editable=False)
    sent_outside = models.JSONField(default=list, blank=True, editable=False)
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"nomination by {self.subject}"
