from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("stonks_plugins", "0006_trust"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="plugin",
            options={
                "ordering": ["name"],
                "permissions": [
                    ("manage_plugin", "Can enable, disable, reload and sync plugins"),
                    ("install_plugin", "Can install, uninstall and purge plugins"),
                ],
            },
        ),
    ]
