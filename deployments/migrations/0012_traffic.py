"""Traffic: a canary with its weight and analysis, a shadow, autoscaling, and what the traffic
tick measured."""

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0011_console_lists_tokens"),
    ]

    operations = [
        migrations.AddField(
            model_name="deployment",
            name="canary_version",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="deployments.modelversion",
            ),
        ),
        migrations.AddField(
            model_name="deployment",
            name="canary_weight",
            field=models.PositiveSmallIntegerField(
                default=0,
                validators=[
                    django.core.validators.MinValueValidator(0),
                    django.core.validators.MaxValueValidator(100),
                ],
            ),
        ),
        migrations.AddField(
            model_name="deployment",
            name="canary_analysis",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="deployment",
            name="shadow_version",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="deployments.modelversion",
            ),
        ),
        migrations.AddField(
            model_name="deployment",
            name="autoscaling",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="deployment",
            name="traffic_state",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
