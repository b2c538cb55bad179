"""Roles and the audit chain's head row; chains audit entries written before this.

Idempotent: groups are fetched or created and given exactly their permissions, the
head row is created once, and only entries without a link are chained.

The digest is frozen here (a copy of `predictions.audit.chain` as it was when this
migration was written), so this migration keeps its meaning when the live code changes.
"""

import datetime as dt
import hashlib
import hmac
import json

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


HASHED_FIELDS = (
    "id",
    "timestamp",
    "action",
    "content_type_id",
    "object_pk",
    "object_id",
    "object_repr",
    "serialized_data",
    "changes",
    "changes_text",
    "additional_data",
    "cid",
    "remote_addr",
    "remote_port",
    "actor_email",
)


def key_fingerprint(key):
    return hashlib.sha256(b"healthguard-audit-chain:" + key).hexdigest()[:16]


def entry_digest(*, row, seq, actor_id, prev_hash, key):
    content = {name: row[name] for name in HASHED_FIELDS}
    content["timestamp"] = row["timestamp"].astimezone(dt.UTC).isoformat()
    content["actor_id"] = actor_id
    content["seq"] = seq
    payload = json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hmac.new(key, f"{prev_hash}\n{payload}".encode(), hashlib.sha256).hexdigest()


def create_chain_head_and_backfill(apps, schema_editor):
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
