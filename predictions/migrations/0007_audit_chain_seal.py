"""Audit chain links become rows written with their entry and linked later.

Each link row now carries the entry's seal (an HMAC of its content and actor) and is
keyed by the entry; `seq`, `prev_hash` and `hash` stay empty until the entry is linked
(at once when linking is inline, by the linker when it is deferred). The seals of links
written before this are computed here from the entries as they are now (the existing
link hashes still prove that content).

The seal is frozen here (a copy of `predictions.audit.chain` as it was when this
migration was written, over migration 0003's frozen column list), so this migration keeps
its meaning when the live code changes.
"""

import datetime as dt
import hashlib
import hmac
import importlib
import json

from django.conf import settings
from django.db import migrations, models

# The hashed columns as migration 0003 froze them (a migration never changes).
HASHED_FIELDS = importlib.import_module(
    "predictions.migrations.0003_roles_and_audit_chain_head"
).HASHED_FIELDS


def entry_seal(*, row, actor_id, key):
    content = {name: row[name] for name in HASHED_FIELDS}
    content["timestamp"] = row["timestamp"].astimezone(dt.UTC).isoformat()
    content["actor_id"] = actor_id
    payload = json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hmac.new(key, f"seal\n{payload}".encode(), hashlib.sha256).hexdigest()


def copy_links_with_seals(apps, schema_editor):
    Old = apps.get_model("predictions", "AuditChainLinkV1")
    Link = apps.get_model("predictions", "AuditChainLink")
    LogEntry = apps.get_model("auditlog", "LogEntry")
    key = str(settings.AUDITLOG_CHAIN_KEY).encode()
    after = 0
    while True:
        old = list(Old.objects.filter(seq__gt=after).order_by("seq")[:2000])
        if not old:
            return
        rows = {
            row["id"]: row
            for row in LogEntry.objects.filter(pk__in=[link.entry_id for link in old])
            .values(*HASHED_FIELDS)
        }
        Link.objects.bulk_create(
            Link(
                entry_id=link.entry_id,
                seq=link.seq,
                actor_id=link.actor_id,
                # An entry already gone gets no seal: verify_auditlog reports it deleted.
                seal=(
                    entry_seal(row=rows[link.entry_id], actor_id=link.actor_id, key=key)
                    if link.entry_id in rows
                    else ""
                ),
                prev_hash=link.prev_hash,
                hash=link.hash,
            )
            for link in old
        )
        after = old[-1].seq


class Migration(migrations.Migration):
    dependencies = [
        ("predictions", "0006_prediction_label"),
        ("auditlog", "0017_add_actor_email"),
    ]

    # A new table rather than the old one altered: its primary key moves from seq to
    # entry_id, which Django's schema editor does not do in place.
    operations = [
        migrations.RenameModel("AuditChainLink", "AuditChainLinkV1"),
        migrations.CreateModel(
            name="AuditChainLink",
            fields=[
                ("entry_id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("seq", models.BigIntegerField(blank=True, null=True, unique=True)),
                ("actor_id", models.BigIntegerField(blank=True, null=True)),
                ("seal", models.CharField(max_length=64)),
                ("prev_hash", models.CharField(blank=True, max_length=64)),
                ("hash", models.CharField(blank=True, max_length=64)),
            ],
            options={
                "ordering": ["seq"],
                "default_permissions": (),
                "indexes": [
                    models.Index(
                        condition=models.Q(("seq__isnull", True)),
                        fields=["entry_id"],
                        name="audit_link_pending",
                    )
                ],
            },
        ),
        migrations.RunPython(copy_links_with_seals, migrations.RunPython.noop),
        migrations.DeleteModel("AuditChainLinkV1"),
    ]
