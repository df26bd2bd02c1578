from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("stonks_plugins", "0009_instances"),
    ]

    operations: list = []
