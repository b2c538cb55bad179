"""Database sessions without the look-up Django makes before storing a new one.

Django's database SessionStore draws a random key and asks the database whether it is
taken (a SELECT) before the INSERT that stores the session. The INSERT alone already
settles it: `save(must_create=True)` turns a duplicate key into CreateError, and
`create()` then draws another key. Dropping the look-up saves one round trip each time
a browser's first result is remembered in its session (inside the upload's transaction,
so the request waits for it); everything else about sessions is Django's.
"""

from __future__ import annotations

from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils.crypto import get_random_string

SESSION_KEY_LENGTH = 32  # as Django's


class SessionStore(DatabaseSessionStore):
    def _get_new_session_key(self) -> str:
        # 32 characters from 36: a collision is left to the INSERT's unique key.
        return get_random_string(SESSION_KEY_LENGTH, VALID_KEY_CHARS)
