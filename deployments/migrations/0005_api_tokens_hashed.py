"""API tokens stored hashed. Tokens of REST framework's `authtoken` app (kept in clear) are
copied as their sha256, so clients keep their token, and the table holding them is dropped."""

import datetime
import hashlib

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django.utils.dateparse import parse_datetime

CLEAR_TABLE = "authtoken_token"


def _aware(value: object) -> datetime.datetime:
    """SQLite hands raw datetimes back as naive text (in UTC, as Django wrote them)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if not isinstance(value, datetime.datetime):
        return timezone.now()
    return value if timezone.is_aware(value) else timezone.make_aware(value, datetime.UTC)


def hash_clear_tokens(apps, schema_editor) -> None:
    connection = schema_editor.connection
    if CLEAR_TABLE not in connection.introspection.table_names():
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name('key')}, user_id, created FROM {CLEAR_TABLE}"
        )
        rows = cursor.fetchall()
    ApiToken = apps.get_model("deployments", "ApiToken")
    ApiToken.objects.bulk_create(
        ApiToken(
            user_id=user_id, digest=hashlib.sha256(key.encode()).hexdigest(), created_at=_aware(at)
        )
        for key, user_id, at in rows
    )
    schema_editor.execute(f"DROP TABLE {CLEAR_TABLE}")
    # The app is no longer installed; forget its migrations so that re-adding it starts clean.
    recorder = MigrationRecorder.Migration._meta.db_table
    schema_editor.execute(f"DELETE FROM {recorder} WHERE app = 'authtoken'")


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0004_names_start_with_a_letter"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiToken",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("digest", models.CharField(max_length=64, unique=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="api_token",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
        migrations.RunPython(hash_clear_tokens, migrations.RunPython.noop),
    ]
