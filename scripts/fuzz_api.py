#!/usr/bin/env python3
"""Fuzz the API with schemathesis against its own OpenAPI schema, on a live server.

Starts gunicorn as production does on 127.0.0.1 (a database of its own, migrated here
and dropped afterwards; DEBUG off), seeds one staff user with an API token and a few
real predictions so that the authenticated list and detail endpoints have something
to return, then runs `schemathesis run <server>/api/schema/` twice: anonymously and
with the staff token. Bounded by --max-examples per operation and --max-seconds per
run. Exits non-zero when schemathesis finds a failure (any 5xx, a response outside
the schema, a status code the schema does not list...).

Checks left out, each because the API is right and the check cannot know it:
`positive_data_acceptance` (the schema can say "a binary file", not "the bytes of a
PNG or JPEG photo with an inner eyelid in it", so random schema-valid bytes are rightly
refused with 400/415). In the staff run only: `ignored_auth` (it cannot take away a
header given with -H) and `negative_data_rejection` (django-filter reads an empty
filter value, as an HTML form sends for a blank field, as "no filter", so
`created_before=` is accepted though "" is not a date-time; the anonymous run keeps the
check for POST /api/predict, and tests refuse non-empty bad filter values with 400).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python scripts/fuzz_api.py --max-examples 50 --max-seconds 150
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from devtools.live import (  # noqa: E402  (needs the repository on sys.path)
    VENV_BIN,
    LiveServer,
    database_drop,
    database_url_for,
    migrate,
)
from devtools.multipart import image_upload  # noqa: E402

IMAGES = REPO_ROOT.parent / "shared" / "data" / "anemia" / "images" / "cpanemic"

SEED = """
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
user, _ = User.objects.get_or_create(username="fuzz-staff", defaults={"is_staff": True})
user.user_permissions.add(Permission.objects.get(codename="view_prediction"))
print(Token.objects.get_or_create(user=user)[0].key)
"""


def seed(env: dict[str, str]) -> str:
    result = subprocess.run(  # noqa: S603  (a fixed command)
        [str(VENV_BIN / "python"), "manage.py", "shell", "-c", SEED],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def seed_predictions(server: LiveServer, token: str, count: int) -> None:
    for path in sorted(IMAGES.glob("*.png"))[:count]:
        body, content_type = image_upload(path.read_bytes(), "e.png")
        server.request(
            "POST",
            "/api/predict",
            body=body,
            headers={
                "Content-Type": content_type,
                "Authorization": f"Token {token}",
            },
        )


def schemathesis(
    server: LiveServer,
    args: argparse.Namespace,
    name: str,
    headers: list[str],
    extra_excluded: tuple[str, ...] = (),
) -> int:
    report = Path(args.report_dir) / f"{name}.xml"
    command = [
        str(VENV_BIN / "schemathesis"),
        "run",
        f"{server.base_url}/api/schema/",
        "--checks",
        "all",
        "--exclude-checks",
        ",".join(["positive_data_acceptance", *extra_excluded]),
        "--max-examples",
        str(args.max_examples),
        "--max-time",
        str(args.max_seconds),
        "--seed",
        str(args.seed),
        "--workers",
        "2",
        "--request-timeout",
        "20",
        "--suppress-health-check",
        "too_slow,filter_too_much",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
    ]
    for header in headers:
        command += ["-H", header]
    print(f"\n=== schemathesis ({name}) ===", flush=True)
    try:
        # Hard stop well past schemathesis' own time budget, should it overrun.
        # Run from the report directory: schemathesis keeps a cache in ./.schemathesis.
        return subprocess.run(  # noqa: S603  (a fixed command)
            command, cwd=args.report_dir, timeout=args.max_seconds * 2 + 120, check=False
        ).returncode
    except subprocess.TimeoutExpired:
        print(f"schemathesis ({name}) overran its time cap", flush=True)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=50)
    parser.add_argument("--max-seconds", type=int, default=150, help="per schemathesis run")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--database", default="healthguard_fuzz")
    parser.add_argument("--report-dir", default=tempfile.gettempdir())
    args = parser.parse_args(argv)

    database_url = database_url_for(args.database)
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}
    env.update(
        {
            "SECRET_KEY": "fuzz-" + uuid.uuid4().hex + uuid.uuid4().hex,
            "DATABASE_URL": database_url,
            "ALLOWED_HOSTS": "127.0.0.1",
            "DEBUG": "0",
            "SECURE_COOKIES": "0",
            "THROTTLE_ANON_PREDICT": "1000000/minute",
            "THROTTLE_USER_PREDICT": "1000000/minute",
            "LOG_LEVEL": "WARNING",
        }
    )
    server = LiveServer(env=env, workers=2)
    codes: dict[str, int] = {}
    try:
        migrate(env)
        token = seed(env)
        server.start()
        seed_predictions(server, token, count=5)
        codes["anonymous"] = schemathesis(server, args, "anonymous", [])
        # See the module docstring for the two checks left out here.
        codes["staff"] = schemathesis(
            server,
            args,
            "staff",
            [f"Authorization: Token {token}"],
            ("ignored_auth", "negative_data_rejection"),
        )
    finally:
        server.stop()
        database_drop(database_url)
    log = server.logs()
    if "Internal Server Error" in log:
        print("the server logged an internal error:", file=sys.stderr)
        print(log[-5000:], file=sys.stderr)
        codes["server-log"] = 1
    print("\n" + ", ".join(f"{name}: exit {code}" for name, code in codes.items()))
    return 0 if all(code == 0 for code in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
