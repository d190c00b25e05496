"""Plots and tables of real Core-API searches run by the CLI: an adaptive ASHA search (rungs
and promotions) and a PBT search (lineage), watched with ``describe --watch`` until they end;
``ridgeline plot`` pages that work offline; ``list-trials`` columns, sorting and top K."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.test_core_api import config

import ridgeline
from ridgeline import visualization as viz
from ridgeline.visualization import data

pytest.importorskip("plotly")

HPARAMS = {
    "increment_by": {"type": "int", "minval": 1, "maxval": 8},
    "lr": {"type": "log", "base": 10, "minval": -4, "maxval": -1},
    "act": {"type": "categorical", "vals": ["relu", "tanh"]},
}


class Searches:
    """Two finished experiments in one store: 1 is adaptive ASHA, 2 is PBT."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.storage = root / "store.db"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RIDGELINE_")}
        self.env |= {"RIDGELINE_DATA_DIR": str(root / "data"), "COLUMNS": "250"}
        self.watch: subprocess.CompletedProcess[str] | None = None
        self.interrupted: tuple[int, str] = (-1, "")

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "ridgeline.cli", "--storage", str(self.storage), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=self.env,
            cwd=self.root,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"ridgeline {' '.join(args)}:\n{result.stdout}\n{result.stderr}")
        return result


@pytest.fixture(scope="module")
def searches(tmp_path_factory: pytest.TempPathFactory) -> Searches:
    root = tmp_path_factory.mktemp("searches")
    s = Searches(root)
    asha_dir, pbt_dir = root / "asha", root / "pbt"
    asha_dir.mkdir()
    pbt_dir.mkdir()
    asha = config(
        asha_dir,
        name="adaptive_asha",
        max_length=40,
        max_trials=8,
        divisor=2,
        max_rungs=3,
        max_concurrent_trials=2,
        hyperparameters=HPARAMS,
    )
    pbt = config(
        pbt_dir,
        name="pbt",
        population_size=4,
        num_rounds=3,
        length_per_round=10,
        replace_function={"truncate_fraction": 0.25},
        explore_function={"resample_probability": 0.0, "perturb_factor": 0.5},
        max_concurrent_trials=2,
        hyperparameters=HPARAMS,
    )
    text = pbt.read_text()
    for key in ("max_length", "max_trials"):
        text = text.replace(f"  {key}: ", f"  # {key}: ")
    pbt.write_text(text)
    assert "Created experiment 1" in s.cli("e", "create", str(asha), str(asha_dir)).stdout
    # Ctrl-C on a watch of an experiment that has not ended (created paused, so that it
    # cannot end first on a slow machine): a clean exit, the experiment carries on.
    created = s.cli("e", "create", str(pbt), str(pbt_dir), "--paused").stdout
    assert "Created experiment 2" in created
    watching = subprocess.Popen(
        [sys.executable, "-m", "ridgeline.cli", "--storage", str(s.storage)]
        + ["e", "describe", "2", "--watch", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=s.env,
    )
    assert watching.stdout is not None
    first = watching.stdout.readline()  # the watch is up
    time.sleep(0.5)
    watching.send_signal(signal.SIGINT)
    out, _ = watching.communicate(timeout=30)
    s.interrupted = (watching.returncode, first + out)
    s.cli("e", "activate", "2")
    s.watch = s.cli("e", "describe", "1", "--watch", "--interval", "0.3", check=False)
    s.cli("e", "wait", "2", "--timeout", "90")
    return s


def test_describe_watch_ends_when_the_experiment_ends(searches: Searches) -> None:
    watch = searches.watch
    assert watch is not None and watch.returncode == 0, watch
    assert "Experiment 1 ended: COMPLETED" in watch.stdout
    assert "adaptive_asha" in watch.stdout and "best_metric" in watch.stdout
    # A finished experiment: the watch draws once and returns at once.
    again = searches.cli("e", "describe", "2", "--watch", "--interval", "0.2")
    assert "Experiment 2 ended: COMPLETED" in again.stdout
    code, out = searches.interrupted
    assert out.startswith("Watching experiment 2 every 0.2 s; Ctrl-C stops.")
    assert code == 0 and "Stopped watching; experiment 2 is PAUSED" in out, out
    assert "Traceback" not in out
    refused = searches.cli("e", "describe", "2", "--watch", "--json", check=False)
    assert refused.returncode == 1 and "--watch" in refused.stderr


def test_every_plot_of_an_adaptive_asha_search(searches: Searches) -> None:
    with ridgeline.load(1, storage=searches.storage) as analysis:
        for kind in viz.KINDS:
            if kind == "lineage":
                continue
            figure = viz.plot(kind, analysis)
            assert figure.data, kind
        rungs = data.rungs(analysis)
        assert [b["rung_lengths"] for b in rungs["brackets"]] == [[10, 20, 40], [20, 40]]
        first = rungs["brackets"][0]["rungs"]
        reached = {t["number"] for t in first[1]["trials"]}
        promoted = {t["number"] for t in first[0]["trials"] if t["promoted"]}
        assert reached and reached <= promoted  # everyone at rung 2 was promoted from rung 1
        assert any(not t["promoted"] for t in first[0]["trials"])  # and someone was not
        names = [t.name for t in viz.plot_rungs(analysis).data if t.name]
        assert any("not promoted" in n for n in names)
        assert any(n.endswith(": promoted") for n in names)
        with pytest.raises(ValueError, match="pbt"):
            viz.plot_lineage(analysis)


def test_lineage_of_a_pbt_search(searches: Searches) -> None:
    with ridgeline.load(2, storage=searches.storage) as analysis:
        lineage = data.lineage(analysis)
        clones = [t for t in lineage["trials"] if t["parent"] is not None]
        assert len(clones) == 2 and all(t["generation"] >= 1 for t in clones)
        for clone in clones:
            parent = next(t for t in lineage["trials"] if t["number"] == clone["parent"])
            # The clone continues from the parent's point a round before its first report.
            assert clone["from"]["step"] == clone["steps"][0] - 10
            assert clone["from"]["value"] in parent["values"]
        figure = viz.plot_lineage(analysis)
        assert len([t for t in figure.data if t.line.dash == "dot"]) == 2
        for kind in viz.KINDS:
            if kind != "rungs":
                assert viz.plot(kind, analysis).data, kind
    # A path works as well (the store file names its newest experiment, the PBT search).
    assert viz.plot_lineage(str(searches.storage)).data


def test_plot_command_writes_a_standalone_page(searches: Searches) -> None:
    page = searches.root / "rungs.html"
    out = searches.cli("plot", "rungs", "1", "-o", str(page))
    assert "Wrote rungs of experiment 1" in out.stdout
    html = page.read_text()
    assert "Rungs and Promotions" in html and "bracket 1" in html
    assert not re.search(r"<script[^>]+src=[\"']?https?:", html)  # plotly.js is embedded
    assert "plotly.js v" in html or len(html) > 1_000_000
    curves = searches.root / "curves.html"
    # An SQLite file names its newest experiment (here the PBT search, 2).
    searches.cli("plot", "learning-curves", str(searches.storage), "-o", str(curves), "--top", "2")
    html = curves.read_text()
    assert "Learning Curves (top 2 highlighted)" in html and "experiment 2:" in html
    bad = searches.cli("plot", "pie", "1", "-o", "x.html", check=False)
    assert bad.returncode == 1 and "unknown plot 'pie'" in bad.stderr
    missing = searches.cli("plot", "slice", "9", "-o", "x.html", check=False)
    assert missing.returncode == 1 and "9" in missing.stderr
    suffix = searches.cli("plot", "slice", "1", "-o", "x.txt", check=False)
    assert suffix.returncode == 1 and ".html" in suffix.stderr


def test_plot_command_png_needs_kaleido(searches: Searches) -> None:
    target = searches.root / "history.png"
    result = searches.cli("plot", "optimization-history", "1", "-o", str(target), check=False)
    if result.returncode == 0:
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "kaleido" in result.stderr and ".html" in result.stderr


def _rows(searches: Searches, *args: str) -> list[dict[str, Any]]:
    return json.loads(searches.cli("e", "list-trials", "1", "--json", *args).stdout)


def test_list_trials_columns_sort_and_top(searches: Searches) -> None:
    table = searches.cli("e", "list-trials", "1").stdout
    header = next(line for line in table.splitlines() if "number" in line)
    for column in ("act", "increment_by", "lr", "best_metric", "steps"):
        assert column in header
    rows = _rows(searches)
    assert len(rows) == 8 and all(set(r["hparams"]) == set(HPARAMS) for r in rows)
    # Tables round, CSV keeps every digit.
    lr = rows[0]["hparams"]["lr"]
    assert f"{lr:.6g}" in table and repr(lr) not in table
    listed = list(csv.DictReader(io.StringIO(searches.cli("e", "lt", "1", "--csv").stdout)))
    assert float(listed[0]["lr"]) == lr and "hparams" not in listed[0]
    # --top K: the K best by the searcher metric (larger is better here), best first.
    top = _rows(searches, "--top", "3")
    best = sorted((r["best_metric"] for r in rows), reverse=True)[:3]
    assert [r["best_metric"] for r in top] == best
    # --sort-by any column, hyperparameters included.
    by_lr = _rows(searches, "--sort-by", "lr")
    assert [r["hparams"]["lr"] for r in by_lr] == sorted(r["hparams"]["lr"] for r in rows)
    both = _rows(searches, "--top", "4", "--sort-by", "increment_by", "--reverse")
    best4 = sorted(rows, key=lambda r: -r["best_metric"])[:4]
    assert {r["number"] for r in both} == {r["number"] for r in best4}
    increments = [r["hparams"]["increment_by"] for r in both]
    assert increments == sorted(increments, reverse=True)
    bad = searches.cli("e", "lt", "1", "--sort-by", "nope", check=False)
    assert bad.returncode == 1 and "no such column" in bad.stderr and "increment_by" in bad.stderr
