from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0012_traffic"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelversion",
            name="input_schema",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="modelversion",
            name="sample_uri",
            field=models.CharField(blank=True, max_length=1024),
        ),
        migrations.AddField(
            model_name="modelversion",
            name="example_rows",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
