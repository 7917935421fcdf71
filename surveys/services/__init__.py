"""Writes for teams, questionnaires, cycles, raters, reminders, nominations and their emails.

One module per sub-domain; everything callers use is re-exported here, so
``from surveys import services`` keeps working.
"""

from __future__ import annotations

from surveys.services.cycles import (
    CYCLE_FIELDS,
    EDITABLE_WHEN_OPEN,
    MAX_ANONYMITY,
    MAX_NOMINATIONS,
    MAX_REMINDER_DAYS,
    MIN_ANONYMITY,
    cycle_close,
    cycle_create,
    cycle_delete,
    cycle_launch,
    cycle_update,
    cycles_close_due,
)
from surveys.services.links import (
    invitation_link_create,
    invitation_links_create,
)
from surveys.services.nominations import (
    NOMINATED_GROUPS,
    OutsideRater,
    cycle_nominations_open,
    nomination_submit,
)
from surveys.services.outbox import (
    EMAIL_BATCH_SIZE,
    emails_ring_on_commit,
    outbound_emails_retry,
    outbound_emails_send,
    outbound_emails_work,
)
from surveys.services.people import (
    CSV_COLUMNS,
    CSV_MAX_BYTES,
    CSV_MAX_ROWS,
    EMAIL_MAX_LENGTH,
    NAME_MAX_LENGTH,
    PERSON_UNIQUE_EMAIL,
    CsvImportError,
    CsvLineError,
    email_normalize,
    email_problem,
    email_validate,
    name_problem,
    people_import_csv,
    person_create,
    person_delete,
    person_update,
    team_create,
    team_update,
)
from surveys.services.questionnaires import (
    DEFAULT_QUESTIONNAIRE_FILE,
    DEFAULT_QUESTIONNAIRE_NAME,
    questionnaire_copy,
    questionnaire_default,
    questionnaire_load,
    questionnaire_load_file,
)
from surveys.services.raters import (
    RaterSpec,
    rater_add,
    rater_remove,
    raters_bulk_add,
    raters_default_assign,
)
from surveys.services.reminders import (
    REMINDER_MIN_INTERVAL,
    reminder_send,
    reminders_send_due,
)

__all__ = [
    "CSV_COLUMNS",
    "CSV_MAX_BYTES",
    "CSV_MAX_ROWS",
    "CYCLE_FIELDS",
    "DEFAULT_QUESTIONNAIRE_FILE",
    "DEFAULT_QUESTIONNAIRE_NAME",
    "EDITABLE_WHEN_OPEN",
    "EMAIL_BATCH_SIZE",
    "EMAIL_MAX_LENGTH",
    "MAX_ANONYMITY",
    "MAX_NOMINATIONS",
    "MAX_REMINDER_DAYS",
    "MIN_ANONYMITY",
    "NAME_MAX_LENGTH",
    "NOMINATED_GROUPS",
    "PERSON_UNIQUE_EMAIL",
    "REMINDER_MIN_INTERVAL",
    "CsvImportError",
    "CsvLineError",
    "OutsideRater",
    "RaterSpec",
    "cycle_close",
    "cycle_create",
    "cycle_delete",
    "cycle_launch",
    "cycle_nominations_open",
    "cycle_update",
    "cycles_close_due",
    "email_normalize",
    "email_problem",
    "email_validate",
    "emails_ring_on_commit",
    "invitation_link_create",
    "invitation_links_create",
    "name_problem",
    "nomination_submit",
    "outbound_emails_retry",
    "outbound_emails_send",
    "outbound_emails_work",
    "people_import_csv",
    "person_create",
    "person_delete",
    "person_update",
    "questionnaire_copy",
    "questionnaire_default",
    "questionnaire_load",
    "questionnaire_load_file",
    "rater_add",
    "rater_remove",
    "raters_bulk_add",
    "raters_default_assign",
    "reminder_send",
    "reminders_send_due",
    "team_create",
    "team_update",
]
