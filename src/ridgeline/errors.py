"""Errors a user can cause. Each message names the offending field or value and the fix."""

from __future__ import annotations


class RidgelineError(Exception):
    """Base class of every error ridgeline raises on purpose."""


class SpaceError(RidgelineError, ValueError):
    """An invalid parameter or search-space definition."""


class ConfigError(RidgelineError, ValueError):
    """An invalid argument to optimize(), Study or a scheduler, or an invalid config file."""


class ObservationError(RidgelineError, ValueError):
    """An observation that cannot be recorded (unknown trial, unknown parameter, bad value)."""


class StoreError(RidgelineError):
    """The store cannot do what was asked (missing experiment, state conflict)."""


class SchedulerError(RidgelineError):
    """A trial process could not be submitted or controlled."""


class TrialError(RidgelineError):
    """Trial-side failure: missing environment, refused request."""


class SearchFailed(RidgelineError):
    """The search ended ERROR: its trials kept failing, none succeeded, or the run broke.
    What was recorded is kept; fix the cause and resume."""


class CoordinatorUnavailable(TrialError, ConnectionError):
    """The coordinator stayed unreachable longer than the retry budget."""


class CertificateRefused(TrialError):
    """The coordinator's TLS certificate is not the one pinned by its fingerprint: final,
    never retried (the server may be an impostor; nothing was sent to it)."""


class UnsafePathError(RidgelineError, ValueError):
    """A path built from untrusted parts that would leave the folder it must stay in."""


class CheckpointError(RidgelineError, ValueError):
    """A checkpoint id or request that cannot be accepted (not a UUID, not this trial's)."""


class LeaseHeld(StoreError):
    """Another coordinator holds the experiment's lease (it names the holder and the expiry)."""

    def __init__(self, message: str, holder: str = "", expires_at: float = 0.0) -> None:
        super().__init__(message)
        self.holder = holder
        self.expires_at = expires_at


class LeaseLost(StoreError):
    """This store handle's lease was taken over: it may no longer write (it is fenced)."""


class ExperimentExists(StoreError):
    """An exclusive create found an existing experiment that it must not duplicate."""

    def __init__(self, message: str, experiment_id: int) -> None:
        super().__init__(message)
        self.experiment_id = experiment_id


class StorageUnavailable(StoreError):
    """The database stayed unreachable or failing longer than the retry bound; ``__cause__``
    holds the last database error."""
