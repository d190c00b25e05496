"""Credentials: one token per trial attempt, one control token per experiment, digests only."""

from __future__ import annotations

from ridgeline.engine.credentials import CONTROL, Credentials, Principal, token_digest


def test_each_attempt_gets_its_own_token_and_the_last_one_alone_is_good() -> None:
    credentials = Credentials("control-secret")
    first = credentials.issue(1)
    other = credentials.issue(2)
    assert credentials.identify(first) == Principal(1)
    assert credentials.identify(other) == Principal(2)
    second = credentials.issue(1)  # trial 1 restarts
    assert len({first, second, other}) == 3
    assert credentials.identify(first) is None
    assert credentials.identify(second) == Principal(1)
    credentials.revoke(1)
    assert credentials.identify(second) is None
    assert credentials.identify(other) == Principal(2)


def test_the_control_token_is_the_experiment_s_and_no_trial_s() -> None:
    credentials = Credentials("control-secret")
    credentials.issue(1)
    assert credentials.identify("control-secret") is CONTROL
    assert CONTROL.is_control and not Principal(1).is_control
    assert credentials.identify("") is None
    assert credentials.identify("control-secreT") is None
    assert credentials.identify("t\u00f6ken\ud800") is None  # odd text is just wrong


def test_only_digests_are_kept_and_a_restored_digest_works() -> None:
    credentials = Credentials("control-secret")
    token = credentials.issue(3)
    digest = credentials.digest(3)
    assert digest == token_digest(token) and len(digest) == 64
    kept = repr(vars(credentials))
    assert token not in kept and "control-secret" not in kept
    # A restarted coordinator knows the trial only by the digest stored with its job.
    restarted = Credentials("control-secret")
    assert restarted.identify(token) is None
    restarted.restore(3, digest)
    assert restarted.identify(token) == Principal(3)
