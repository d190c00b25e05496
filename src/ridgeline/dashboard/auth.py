"""Who may use the dashboard: the holder of the login link, then their session.

The login token is random per dashboard and shown on the terminal that started it (never in
logs). Opening ``/login?token=...`` swaps it for a session cookie (HttpOnly, SameSite=Strict)
and a CSRF token the pages send back in a header with every POST. Comparisons of secrets are
constant-time.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

COOKIE = "ridgeline_session"  # the session cookie's name starts so (see ``Access.cookie``)
CSRF_HEADER = "X-CSRF-Token"
MAX_SESSIONS = 256  # the oldest session is dropped beyond this many


@dataclass
class Access:
    """The login token and the live sessions (session id -> CSRF token)."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    sessions: dict[str, str] = field(default_factory=dict)
    # Browsers share cookies between the ports of a host: each dashboard names its own, so
    # logging in to one (a second coordinator's) does not log out of another.
    cookie: str = field(default_factory=lambda: f"{COOKIE}_{secrets.token_hex(4)}")

    def login(self, offered: str) -> str | None:
        """A new session id when ``offered`` is the login token, else None."""
        if not hmac.compare_digest(offered.encode(), self.token.encode()):
            return None
        session = secrets.token_urlsafe(32)
        self.sessions[session] = secrets.token_urlsafe(32)
        while len(self.sessions) > MAX_SESSIONS:
            self.sessions.pop(next(iter(self.sessions)))
        return session

    def csrf_for(self, session: str | None) -> str | None:
        """The CSRF token of a valid session id, else None."""
        if not session:
            return None
        for known, csrf in self.sessions.items():
            if hmac.compare_digest(known.encode(), session.encode()):
                return csrf
        return None

    def csrf_ok(self, session: str | None, offered: str | None) -> bool:
        expected = self.csrf_for(session)
        if expected is None or not offered:
            return False
        return hmac.compare_digest(expected.encode(), offered.encode())
