"""Who may call the coordinator's HTTP API: capability-style bearer tokens.

The experiment's control token (its config's ``token``, held by the CLI) pauses, activates and
kills; each trial attempt gets a random token of its own that is good for that trial's routes
only, and a new attempt's token replaces the previous one, so a leftover process of an earlier
attempt cannot write into the current one. Only SHA-256 digests are kept: tokens are 256 random
bits, so a digest reveals nothing usable, and it can be stored with the trial's job so that a
restarted coordinator recognises the trials it re-attaches.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

TOKEN_BYTES = 32


def new_token() -> str:
    """A fresh random bearer token (URL-safe ASCII)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    """The hex SHA-256 of ``token``: what is kept in memory and in the store."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: the experiment's controller, or one trial's current attempt."""

    trial: int | None = None  # None: the control credential

    @property
    def is_control(self) -> bool:
        return self.trial is None

    def __str__(self) -> str:
        return "the experiment's control token" if self.trial is None else f"trial {self.trial}"


CONTROL = Principal()


class Credentials:
    """The live credentials of one experiment: its control digest and one digest per trial."""

    def __init__(self, control_token: str) -> None:
        self._control = token_digest(control_token)
        self._trials: dict[int, str] = {}  # trial number -> digest of its current attempt
        self._owners: dict[str, int] = {}  # digest -> trial number

    def issue(self, trial: int) -> str:
        """A token for a new attempt of ``trial``; the previous attempt's token stops working."""
        token = new_token()
        self.restore(trial, token_digest(token))
        return token

    def restore(self, trial: int, digest: str) -> None:
        """Accept the attempt whose token has ``digest`` (a re-attached trial's, from its job)."""
        self.revoke(trial)
        self._trials[trial] = digest
        self._owners[digest] = trial

    def revoke(self, trial: int) -> None:
        digest = self._trials.pop(trial, None)
        if digest is not None:
            self._owners.pop(digest, None)

    def digest(self, trial: int) -> str | None:
        """The digest of ``trial``'s current attempt token (to store with its job)."""
        return self._trials.get(trial)

    def identify(self, token: str) -> Principal | None:
        """The principal ``token`` belongs to, or None. Comparisons are between digests, in
        constant time; the table is keyed by digest, so look-up time says nothing of a token."""
        presented = token_digest(token)
        if hmac.compare_digest(presented, self._control):
            return CONTROL
        trial = self._owners.get(presented)
        if trial is not None and hmac.compare_digest(presented, self._trials[trial]):
            return Principal(trial)
        return None


__all__ = ["CONTROL", "Credentials", "Principal", "new_token", "token_digest"]
