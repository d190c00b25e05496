"""results.csv kept in step with the table by appending, rewritten only when columns change."""

from __future__ import annotations

import threading
from pathlib import Path

from ridgeline.results import ResultsFile, ResultsTable


def _sync(table: ResultsTable, file: ResultsFile) -> None:
    file.update(table.rows, len(table.rows), table.columns())


def test_appended_file_equals_a_full_write(tmp_path: Path) -> None:
    table = ResultsTable(lower_is_better=True)
    file = ResultsFile(tmp_path / "results.csv")
    for step in range(1, 4):
        table.add_observation(1, step, {"x": 0.5}, 1.0 / step, {})
        _sync(table, file)
    table.add_observation(2, 1, {"x": 0.25, "kind": "a"}, 0.5, {"acc": 0.9})  # new columns
    _sync(table, file)
    table.add_observation(2, 2, {"x": 0.25, "kind": "a"}, 0.4, {"acc": 0.95})
    table.finalize(1, "COMPLETED")
    table.finalize(2, "COMPLETED")
    _sync(table, file)
    _sync(table, file)  # nothing new: nothing written twice
    table.write_csv(tmp_path / "whole.csv")
    assert (tmp_path / "results.csv").read_text() == (tmp_path / "whole.csv").read_text()
    assert (tmp_path / "results.csv").read_text().count("COMPLETED") == 2


def test_an_older_snapshot_never_shrinks_the_file(tmp_path: Path) -> None:
    table = ResultsTable(lower_is_better=True)
    file = ResultsFile(tmp_path / "results.csv")
    for step in range(1, 6):
        table.add_observation(1, step, {"x": 0.5}, 1.0, {})
    columns = table.columns()
    file.update(table.rows, 5, columns)
    file.update(table.rows, 2, columns)  # a write queued earlier that ran late
    assert len((tmp_path / "results.csv").read_text().splitlines()) == 1 + 5


def test_a_deleted_file_is_written_whole_again(tmp_path: Path) -> None:
    table = ResultsTable(lower_is_better=True)
    file = ResultsFile(tmp_path / "results.csv")
    table.add_observation(1, 1, {"x": 0.5}, 1.0, {})
    _sync(table, file)
    (tmp_path / "results.csv").unlink()
    table.add_observation(1, 2, {"x": 0.5}, 0.5, {})
    _sync(table, file)
    assert len((tmp_path / "results.csv").read_text().splitlines()) == 1 + 2


def test_updates_from_threads_while_rows_arrive(tmp_path: Path) -> None:
    """As in the coordinator: the loop's thread adds rows and snapshots (count, columns);
    worker threads write whatever snapshot is newest."""
    table = ResultsTable(lower_is_better=True)
    file = ResultsFile(tmp_path / "results.csv")
    latest = (0, table.columns())
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            count, columns = latest
            file.update(table.rows, count, columns)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for step in range(1, 3001):
        table.add_observation(step % 7, step, {"x": 0.5}, 1.0 / step, {f"c{step % 5}": step})
        latest = (len(table.rows), table.columns())
    stop.set()
    for thread in threads:
        thread.join()
    _sync(table, file)
    table.write_csv(tmp_path / "whole.csv")
    assert (tmp_path / "results.csv").read_text() == (tmp_path / "whole.csv").read_text()
