import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("stonks_plugins", "0009_instances"),
    ]

    operations = [
        migrations.CreateModel(
            name="PluginLogRecord",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("at", models.DateTimeField(help_text="When the plugin logged it.")),
                (
                    "level",
                    models.PositiveSmallIntegerField(
                        help_text="Python's level number (INFO is 20)."
                    ),
                ),
                (
                    "logger",
                    models.CharField(
                        help_text="Name of the logger it was logged on.", max_length=200
                    ),
                ),
                (
                    "message",
                    models.TextField(help_text="The message, secrets masked, cut to size."),
                ),
                (
                    "exc_text",
                    models.TextField(blank=True, help_text="Traceback or stack, if any; masked."),
                ),
                (
                    "process",
                    models.CharField(help_text="hostname:pid of the process.", max_length=200),
                ),
                (
                    "plugin",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="log_records",
                        to="stonks_plugins.plugin",
                    ),
                ),
            ],
            options={
                "ordering": ["-at", "-id"],
                "indexes": [
                    models.Index(fields=["plugin", "-at", "-id"], name="plugin_log_recent")
                ],
            },
        ),
    ]
