from django.db import migrations


def seed(apps, schema_editor):
    from diagnostics.defaults import DEFAULT_RULES

    FaultRule = apps.get_model("diagnostics", "FaultRule")
    for rule in DEFAULT_RULES:
        FaultRule.objects.update_or_create(
            operator=None,
            error_code=rule["error_code"],
            vendor_id="",
            vendor_error_code="",
            defaults={k: v for k, v in rule.items() if k != "error_code"},
        )


class Migration(migrations.Migration):
    dependencies = [("diagnostics", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
