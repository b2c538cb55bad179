#!/usr/bin/env python3
"""Remove from the image's venv what the running service never reads (Dockerfile step).

    python deploy/slim_venv.py /opt/venv/lib/python3.11/site-packages --app /app

Runs in the builder stage, after pip and before bytecode is compiled. Removes:
- test suites (`tests` packages) and stale `__pycache__` folders;
- translation sources (`.po`; Django reads the compiled `.mo`) and type stubs (`.pyi`);
- translations of languages the service does not offer: every `locale/<lang>` folder
  whose language is not in settings.LANGUAGES (read here, so adding a language to the
  settings keeps its Django and DRF translations without touching this file);
- NumPy's build tools (f2py, distutils, C headers, Cython examples);
- OpenCV's Haar cascade files, unless the application code mentions them.
Prints what it removed and the space saved.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

NUMPY_BUILD_TOOLS = ("f2py", "distutils", "core/include", "_core/include", "random/_examples")


def size_of(path: Path) -> int:
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def offered_languages(app: Path) -> set[str]:
    """Base language codes of settings.LANGUAGES, plus English (Django's source text)."""
    sys.path.insert(0, str(app.resolve()))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthguard.settings")
    os.environ.setdefault("SECRET_KEY", "slim-venv-build-only")
    from django.conf import settings

    return {"en"} | {code.split("-")[0].lower() for code, _ in settings.LANGUAGES}


def locale_dirs_unused(site_packages: Path, keep: set[str]) -> Iterable[Path]:
    for locale in site_packages.rglob("locale"):
        if not locale.is_dir():
            continue
        for lang in locale.iterdir():
            # Folder names are gettext locales: fr, fr_CA, pt_BR, sr_Latn, zh_Hans...
            if lang.is_dir() and re.split(r"[_@-]", lang.name)[0].lower() not in keep:
                yield lang


def app_mentions_cascades(app: Path | None) -> bool:
    if app is None:
        return True  # cannot tell: keep them
    pattern = re.compile(r"haarcascade|cv2\.data|CascadeClassifier")
    this_file = Path(__file__).resolve()
    return any(
        pattern.search(p.read_text(errors="ignore"))
        for p in app.rglob("*.py")
        if p.resolve() != this_file and not any(part.startswith(".") for part in p.parts)
    )


def targets(site_packages: Path, app: Path | None, keep: set[str]) -> Iterable[tuple[str, Path]]:
    for path in site_packages.rglob("*"):
        if path.is_dir() and path.name in ("tests", "__pycache__"):
            yield "tests and caches", path
        elif path.is_file() and path.suffix in (".po", ".pyi"):
            yield ".po and .pyi", path
    for lang in locale_dirs_unused(site_packages, keep):
        yield "unoffered languages", lang
    for tool in NUMPY_BUILD_TOOLS:
        path = site_packages / "numpy" / tool
        if path.exists():
            yield "numpy build tools", path
    if not app_mentions_cascades(app):
        yield from (("opencv haar cascades", p) for p in site_packages.glob("cv2/data/*.xml"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("site_packages", type=Path)
    parser.add_argument("--app", type=Path, help="application code, searched for cascades")
    parser.add_argument(
        "--languages", nargs="*", help="language codes to keep (default: settings.LANGUAGES)"
    )
    args = parser.parse_args(argv)
    keep = {"en", *args.languages} if args.languages else offered_languages(args.app or Path.cwd())

    saved: dict[str, int] = {}
    for reason, path in list(targets(args.site_packages, args.app, keep)):
        if not path.exists() and not path.is_symlink():
            continue  # inside a folder removed earlier
        size = size_of(path)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        saved[reason] = saved.get(reason, 0) + size
    print(f"slim_venv: kept languages {', '.join(sorted(keep))}")
    for reason, size in sorted(saved.items(), key=lambda item: -item[1]):
        print(f"slim_venv: removed {reason}: {size / 1e6:.1f} MB")
    print(f"slim_venv: {sum(saved.values()) / 1e6:.1f} MB removed in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
