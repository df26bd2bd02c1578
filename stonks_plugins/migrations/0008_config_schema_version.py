from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("stonks_plugins", "0007_install_permission"),
    ]

    operations: list = []
