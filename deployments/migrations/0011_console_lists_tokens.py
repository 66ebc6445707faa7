# Named API tokens with an optional expiry (several per user), archiving of deployments and
# models, the audit table that outlives deleted records, and indexes for the dashboard's filters.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('deployments', '0010_observability'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('actor_name', models.CharField(blank=True, max_length=150)),
                ('source_ip', models.GenericIPAddressField(blank=True, null=True)),
                ('via', models.CharField(default='worker', max_length=8)),
                ('action', models.CharField(max_length=32)),
                ('target', models.CharField(max_length=200)),
                ('message', models.TextField(blank=True)),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.AlterModelOptions(
            name='apitoken',
            options={'ordering': ['-created_at', '-id']},
        ),
        migrations.AddField(
            model_name='apitoken',
            name='expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='apitoken',
            name='name',
            field=models.CharField(default='personal', max_length=64),
        ),
        migrations.AddField(
            model_name='apitoken',
            name='prefix',
            field=models.CharField(blank=True, max_length=8),
        ),
        migrations.AddField(
            model_name='deployment',
            name='archived_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='registeredmodel',
            name='archived_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='apitoken',
            name='user',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_tokens', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddIndex(
            model_name='deployment',
            index=models.Index(fields=['status', 'name'], name='deployment_status_idx'),
        ),
        migrations.AddIndex(
            model_name='deployment',
            index=models.Index(fields=['updated_at', 'name'], name='deployment_updated_idx'),
        ),
        migrations.AddConstraint(
            model_name='apitoken',
            constraint=models.UniqueConstraint(fields=('user', 'name'), name='unique_token_name_per_user'),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='actor',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
    ]
