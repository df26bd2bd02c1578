"""Several instances of one plugin (``NAME:LABEL``): each is a row of its own, pointing at
its plugin's row. Every row that exists already becomes its plugin's default instance."""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models


def existing_rows_are_default_instances(apps: Any, schema_editor: Any) -> None:
    """Before instances, every row was the one configuration of its plugin: its default
    instance (no label, no base), with its config, secrets and events as they were."""
    plugin = apps.get_model("stonks_plugins", "Plugin")
    db = schema_editor.connection.alias
    plugin.objects.using(db).exclude(label="", instance_of=None).update(label="", instance_of=None)


class Migration(migrations.Migration):
    dependencies = [
        ("stonks_plugins", "0008_config_schema_version"),
    ]

    operations: list = [
        migrations.AddField(
            model_name="plugin",
            name="instance_of",
            field=models.ForeignKey(
                blank=True,
                help_text="The plugin this row is an instance of (NAME:LABEL); empty for a "
                "plugin's default instance. Purging a plugin removes its instances too.",
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="instances",
                to="stonks_plugins.plugin",
            ),
        ),
        migrations.AddField(
            model_name="plugin",
            name="label",
            field=models.CharField(
                blank=True,
                default="",
                help_text="The instance's label; empty for the default instance (see "
                "instance_names).",
                max_length=40,
            ),
        ),
        migrations.RunPython(existing_rows_are_default_instances, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="plugin",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("instance_of__isnull", True), ("label", "")),
                    models.Q(
                        ("instance_of__isnull", False), models.Q(("label", ""), _negated=True)
                    ),
                    _connector="OR",
                ),
                name="plugin_instance_has_label",
            ),
        ),
    ]
