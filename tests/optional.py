"""One way for a test to need something optional: a system tool, PostgreSQL, Redis, the
dataset. Without it the test is skipped with the reason; with
HEALTHGUARD_REQUIRE_ALL_TOOLS=1 (CI, which installs everything) it fails instead, and
tests/conftest.py turns any other skip into a failure too.

    @pytest.mark.requires_tool("promtool")        # a marker, checked before the test
    promtool = require_tool("promtool")           # or inside a fixture / test
    url = require_postgres()
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

REQUIRE_ALL_TOOLS = "HEALTHGUARD_REQUIRE_ALL_TOOLS"

# How to get each tool on Debian, for the skip reason.
INSTALL = {
    "promtool": "apt-get install -y prometheus",
    "chromium": "apt-get install -y chromium",
    "clamd": "apt-get install -y clamav-daemon",
    "msgfmt": "apt-get install -y gettext",
}
# A tool found elsewhere than PATH: an env var naming its executable.
OVERRIDE = {"chromium": "HEALTHGUARD_CHROMIUM"}


def all_required() -> bool:
    return os.environ.get(REQUIRE_ALL_TOOLS) == "1"


def unavailable(reason: str) -> NoReturn:
    """Skip with `reason`, or fail with it when every optional tool is required."""
    if all_required():
        pytest.fail(f"{reason} [{REQUIRE_ALL_TOOLS}=1: required]", pytrace=False)
    pytest.skip(reason)


def tool_path(name: str) -> str | None:
    override = OVERRIDE.get(name)
    if override and os.environ.get(override):
        path = os.environ[override]
        return path if os.access(path, os.X_OK) else None
    return shutil.which(name)


def require_tool(name: str) -> str:
    """The executable's path, or a skip (a failure under the switch) saying how to get it."""
    path = tool_path(name)
    if path is None:
        where = f" (or set {OVERRIDE[name]})" if name in OVERRIDE else ""
        how = INSTALL.get(name, f"install {name}")
        unavailable(f"{name} is not on PATH{where}: {how}")
    return path


def postgres_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


def require_postgres() -> str:
    """DATABASE_URL when it names PostgreSQL, else a skip (a failure under the switch)."""
    url = postgres_url()
    if url is None:
        unavailable("needs PostgreSQL in DATABASE_URL (CI sets it; the default is SQLite)")
    return url
