"""Create (or update) a staff account and put it in one role group."""

from __future__ import annotations

import getpass
import os
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from predictions.audit.trail import audit_context

ROLES = ("clinical_staff", "compliance_officer")
PASSWORD_ENV = "HEALTHGUARD_STAFF_PASSWORD"  # noqa: S105 - a variable name, not a secret


class Command(BaseCommand):
    help = (
        "Create or update a staff user (is_staff, so they can sign in to /admin/) in "
        f"one role group. With --noinput the password comes from ${PASSWORD_ENV}; "
        "without it the account gets no usable password (set one with changepassword)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--group", required=True, choices=ROLES)
        parser.add_argument("--email", default="")
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive")

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        try:
            group = Group.objects.get(name=options["group"])
        except Group.DoesNotExist:
            raise CommandError(f"group {options['group']} is missing: run migrate") from None
        password = self._password(options["interactive"])
        User = get_user_model()
        with audit_context(name="createstaff"), transaction.atomic():
            user, created = User.objects.get_or_create(username=username)
            if password is not None:
                try:
                    validate_password(password, user)
                except ValidationError as exc:
                    raise CommandError("; ".join(exc.messages)) from None
                user.set_password(password)
            elif created:
                user.set_unusable_password()
            user.is_staff = True
            user.is_active = True
            if options["email"]:
                user.email = options["email"]
            user.save()
            user.groups.add(group)
        verb = "Created" if created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} staff user {username} in {group.name}"))
        if password is None and created:
            self.stdout.write(f"Set a password with: manage.py changepassword {username}")

    def _password(self, interactive: bool) -> str | None:
        if not interactive:
            return os.environ.get(PASSWORD_ENV) or None
        first = getpass.getpass("Password (empty: none for now): ")
        if not first:
            return None
        if getpass.getpass("Password (again): ") != first:
            raise CommandError("the passwords do not match")
        return first
