"""Reports built under the earlier scoring rules are withdrawn: their figures (a spread of
anonymous raters, two decimals, dimension-level rules) are not safe to show any more.

Their data and PDF are cleared and they are marked failed with the reason, so a coach or
the manager re-runs them and gets a report built from the safe base of per-item figures.
"""

from django.db import migrations

REASON = "Built under earlier scoring rules, which are no longer shown. Re-run it to build it with the current ones."


def withdraw(apps, schema_editor):
    report_model = apps.get_model("reports", "Report")
    # "contains" rather than data__format: a missing key would compare as NULL and escape the exclude.
    report_model.objects.filter(status="ready").exclude(data__contains={"format": 2}).update(
        status="failed", reason=REASON, data={}, pdf=None, pdf_size=0, pdf_sha256=""
    )


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0002_release_email_status"),
    ]

    operations = [migrations.RunPython(withdraw, migrations.RunPython.noop)]
