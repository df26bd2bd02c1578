from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("stonks_plugins", "0007_install_permission"),
    ]

    operations: list = [
        migrations.AddField(
            model_name="pluginconfig",
            name="schema_version",
            field=models.PositiveIntegerField(
                default=1,
                help_text="The plugin's config schema version (manifest configuration.version) "
                "this data was written for; an upgrade that raises it migrates the data "
                "(config.upgrade).",
            ),
        ),
    ]
