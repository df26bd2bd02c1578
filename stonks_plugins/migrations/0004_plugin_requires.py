from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("stonks_plugins", "0003_config_versions"),
    ]

    operations = [
        migrations.AddField(
            model_name="plugin",
            name="requires",
            field=models.CharField(
                blank=True,
                help_text="What a plugin that is a Django app waits for: 'restart' (its app is "
                "not loaded by this process) or 'migrate' (its migrations are not applied); set "
                "by sync.",
                max_length=10,
            ),
        ),
    ]
