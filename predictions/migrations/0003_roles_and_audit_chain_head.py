"""Roles and the audit chain's head row; chains audit entries written before this.

Idempotent: groups are fetched or created and given exactly their permissions, the
head row is created once, and only entries without a link are chained.
"""

from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations
from django.db.models import Exists, OuterRef

ROLES = {
    "clinical_staff": [("predictions", "prediction", "view_prediction")],
    "compliance_officer": [
        ("auditlog", "logentry", "view_logentry"),
        ("predictions", "auditchainstate", "export_auditlog"),
    ],
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations ran (post_migrate); the
    # groups need them now, on a fresh database too.
    for app_config in apps.get_app_configs():
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = models_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(
            [
                Permission.objects.get(
                    content_type__app_label=app, content_type__model=model, codename=codename
                )
                for app, model, codename in perms
            ]
        )


def create_chain_head_and_backfill(apps, schema_editor):
    from predictions.audit import HASHED_FIELDS, entry_digest, key_fingerprint

    State = apps.get_model("predictions", "AuditChainState")
    Link = apps.get_model("predictions", "AuditChainLink")
    LogEntry = apps.get_model("auditlog", "LogEntry")
    key = str(settings.AUDITLOG_CHAIN_KEY).encode()
    state, _ = State.objects.get_or_create(pk=1)
    if not state.key_fingerprint:
        state.key_fingerprint = key_fingerprint(key)
    seq, prev = state.head_seq, state.head_hash
    while True:
        rows = list(
            LogEntry.objects.exclude(Exists(Link.objects.filter(entry_id=OuterRef("pk"))))
            .order_by("pk")
            .values(*HASHED_FIELDS, "actor_id")[:2000]
        )
        if not rows:
            break
        links = []
        for row in rows:
            seq += 1
            digest = entry_digest(
                row=row, seq=seq, actor_id=row["actor_id"], prev_hash=prev, key=key
            )
            links.append(
                Link(seq=seq, entry_id=row["id"], actor_id=row["actor_id"], prev_hash=prev,
                     hash=digest)
            )
            prev = digest
        Link.objects.bulk_create(links)
    state.head_seq, state.head_hash = seq, prev
    state.save()


class Migration(migrations.Migration):
    dependencies = [
        ("predictions", "0002_audit_hash_chain"),
        ("auditlog", "0017_add_actor_email"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_roles, migrations.RunPython.noop),
        migrations.RunPython(create_chain_head_and_backfill, migrations.RunPython.noop),
    ]
