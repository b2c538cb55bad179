"""English and French: the switcher, the negotiated language, complete translations."""

from __future__ import annotations

import ast
import gettext
from pathlib import Path

import pytest
from django.test import Client
from django.utils import translation

from predictions import patient_copy
from tests.pages.conftest import csrf_token_from, html_part, text_of

pytestmark = pytest.mark.django_db
LOCALE = Path(__file__).resolve().parents[2] / "locale" / "fr" / "LC_MESSAGES"


def test_english_is_the_default(client):
    response = client.get("/")

    assert '<html lang="en">' in response.content.decode()
    assert "Check a photo for signs of anemia" in text_of(response)  # eyelid or nails


def test_the_browser_language_is_used():
    response = Client(headers={"accept-language": "fr-FR,fr;q=0.9"}).get("/")

    assert '<html lang="fr">' in response.content.decode()
    text = text_of(response)
    assert "pas un diagnostic" in text
    assert "prise de sang" in text


def test_the_switcher_changes_the_language(client):
    token = csrf_token_from(client)

    response = client.post(
        "/i18n/setlang/", {"language": "fr", "next": "/history", "csrfmiddlewaretoken": token}
    )

    assert response.status_code == 302
    assert response["Location"] == "/history"
    assert '<html lang="fr">' in client.get("/").content.decode()


def test_the_switcher_is_a_form_with_csrf_token(client):
    html = client.get("/").content.decode()

    form = html_part(r'<form class="language".*?</form>', html)
    assert 'action="/i18n/setlang/"' in form
    assert 'method="post"' in form
    assert 'name="csrfmiddlewaretoken"' in form
    assert 'name="language" value="fr"' in form


def test_the_switcher_refuses_a_post_without_csrf_token(client):
    client.get("/")

    assert client.post("/i18n/setlang/", {"language": "fr"}).status_code == 403


@pytest.mark.parametrize(
    "table",
    [
        patient_copy.ERROR_MESSAGES,
        patient_copy.SCRIPT_TEXT,
        patient_copy.RECOMMENDATIONS,
        patient_copy.RISK_LABELS,
        patient_copy.REJECTION_ADVICE,
    ],
    ids=["errors", "script", "recommendations", "labels", "photo-gate-advice"],
)
def test_every_message_has_a_french_translation(table):
    for key, text in table.items():
        with translation.override("en"):
            english = str(text)
        with translation.override("fr"):
            french = str(text)
        assert french != english, key


def test_the_error_pages_messages_are_translated():
    # predictions/handlers.py hands these English messages to the error templates.
    for english in patient_copy.ERROR_PAGE_MESSAGES:
        with translation.override("fr"):
            assert translation.gettext(english) != english, english


def _po_entries(path: Path) -> dict[str, tuple[str, bool]]:
    """msgid -> (msgstr, fuzzy) for a .po file (enough of the format for ours)."""
    entries: dict[str, tuple[str, bool]] = {}
    key: str | None = None
    current: list[str] = []
    fuzzy = pending_fuzzy = False
    msgid = ""
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if line.startswith("#,"):
            pending_fuzzy = "fuzzy" in line
        elif line.startswith(("msgid ", "msgstr ")):
            if key == "msgid":
                msgid = "".join(current)
            key, rest = line.split(" ", 1)
            current = [ast.literal_eval(rest)]
            if key == "msgid":
                fuzzy, pending_fuzzy = pending_fuzzy, False
        elif line.startswith('"'):
            current.append(ast.literal_eval(line))
        elif key == "msgstr":
            if msgid:
                entries[msgid] = ("".join(current), fuzzy)
            key = None
    return entries


def test_the_french_catalog_is_complete_and_compiled():
    # The .mo is committed (make run needs no gettext): it must match the .po.
    po = LOCALE / "django.po"
    entries = _po_entries(po)
    assert len(entries) > 50
    with (LOCALE / "django.mo").open("rb") as fh:
        compiled = gettext.GNUTranslations(fh)
    for msgid, (msgstr, fuzzy) in entries.items():
        assert msgstr and not fuzzy, msgid
        assert compiled.gettext(msgid) == msgstr, f"django.mo is stale for {msgid!r}"


def test_the_photo_gate_advice_is_the_english_of_ml_gate():
    from ml import gate

    with translation.override("en"):
        for reason in gate.REASONS:
            english = str(patient_copy.REJECTION_ADVICE[reason])
            expected = (
                gate.HOW_TO["conjunctiva"]
                if reason == "unlike_training_photos"
                else gate.ADVICE[reason].format(subject=gate.SUBJECT["conjunctiva"])
            )
            assert english == expected, reason
