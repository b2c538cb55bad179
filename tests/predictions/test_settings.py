"""Settings come from the environment; a bad value fails at start naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from healthguard.env import env_bool, env_choice, env_int, env_list

ROOT = Path(__file__).resolve().parents[2]


def settings_import(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL"}}
    return subprocess.run(
        [sys.executable, "-c", "import healthguard.settings"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_env_bool_accepts_the_usual_spellings():
    assert env_bool("X", environ={"X": "yes"}) is True
    assert env_bool("X", environ={"X": "0"}) is False
    assert env_bool("X", True, environ={}) is True


def test_env_bool_names_the_variable_on_a_bad_value():
    with pytest.raises(ImproperlyConfigured, match="DEBUG"):
        env_bool("DEBUG", environ={"DEBUG": "maybe"})


def test_env_int_checks_type_and_bounds():
    assert env_int("N", 3, environ={"N": "5"}) == 5
    with pytest.raises(ImproperlyConfigured, match="WEB_CONCURRENCY"):
        env_int("WEB_CONCURRENCY", 2, environ={"WEB_CONCURRENCY": "two"})
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("N", 2, minimum=1, environ={"N": "0"})


def test_env_list_splits_commas_and_drops_blanks():
    assert env_list("H", environ={"H": " a.org, ,b.org "}) == ["a.org", "b.org"]


def test_env_choice_is_case_insensitive_and_strict():
    assert env_choice("L", "INFO", ("DEBUG", "INFO"), environ={"L": "debug"}) == "DEBUG"
    with pytest.raises(ImproperlyConfigured, match="LOG_LEVEL"):
        env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO"), environ={"LOG_LEVEL": "LOUD"})


def test_production_settings_refuse_to_start_without_a_secret_key():
    result = settings_import({})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_a_bad_database_url_names_the_variable():
    result = settings_import({"SECRET_KEY": "x", "DATABASE_URL": "nosuchdb://what"})
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_debug_is_off_unless_asked_for():
    result = subprocess.run(
        [sys.executable, "-c", "import healthguard.settings as s; print(s.DEBUG)"],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k != "DEBUG"}, "SECRET_KEY": "x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "False"
