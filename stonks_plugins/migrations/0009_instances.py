from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("stonks_plugins", "0008_config_schema_version"),
    ]

    operations: list = []
