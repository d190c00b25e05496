"""Request-body checks: clean bodies pass, and a refused one names where the fault is."""

from __future__ import annotations

import pytest

from ridgeline.engine.limits import MAX_DEPTH, Refused, check_json


def test_a_clean_report_passes() -> None:
    check_json({"reports": [{"step": 1, "objective": 0.5, "context": {"ü": "naïve", "n": 2**60}}]})


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"reports": [{"context": {"note": "ok\ud800"}}]}, "body.reports[0].context.note"),
        ({"reports": [{"step": 1, "context": {"k\udfff": 1}}]}, "body.reports[0].context"),
        ({"reports": [{"step": 1, "objective": 10**400}]}, "body.reports[0].objective"),
    ],
)
def test_a_refusal_names_the_path_to_the_fault(body: dict[str, object], where: str) -> None:
    with pytest.raises(Refused) as refused:
        check_json(body)
    assert refused.value.message.startswith(f"{where}: ")


def test_nesting_past_the_limit_is_refused_where_it_starts() -> None:
    deep: object = 1
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(Refused, match=f"nested deeper than {MAX_DEPTH} levels"):
        check_json({"x": deep})
    check_json({"x": [[[1]]]})  # shallow nesting is fine
