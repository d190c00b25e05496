"""``ridgeline plot KIND EXPERIMENT -o FILE``: one of ``ridgeline.visualization``'s figures
as a standalone HTML page (plotly.js embedded, no network) or an image (with kaleido)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ridgeline.cli import cli, fail


@cli.command("plot")
@click.argument("kind", metavar="KIND")
@click.argument("source", metavar="EXPERIMENT")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write: .html (standalone, works offline) or .png/.svg/.pdf (needs kaleido).",
)
@click.option(
    "--top",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="learning-curves: how many of the best trials to highlight.",
)
@click.option(
    "--params",
    "params",
    nargs=2,
    default=None,
    metavar="X Y",
    help="contour: the two hyperparameters (default: the two most important).",
)
@click.pass_context
def plot(
    ctx: click.Context,
    kind: str,
    source: str,
    output: str,
    top: int,
    params: tuple[str, str] | None,
) -> None:
    """Draw KIND for EXPERIMENT (an experiment id in the store, or a SHERPA output folder or
    SQLite file) to a file.

    KIND: optimization-history, parallel-coordinate, slice, contour, param-importances,
    intermediate-values, learning-curves, rungs (ASHA/Hyperband), lineage (PBT)."""
    from ridgeline.analysis import load  # lazy: keeps `import ridgeline.cli` light
    from ridgeline.visualization import KINDS  # lazy: keeps `import ridgeline.cli` light
    from ridgeline.visualization import plot as make  # lazy: keeps `import ridgeline.cli` light

    # lazy: keeps `import ridgeline.cli` light
    from ridgeline.visualization.export import ExportError, write_figure

    name = kind.replace("_", "-")
    if name not in KINDS:
        fail(f"unknown plot {kind!r}; choose one of {', '.join(KINDS)}")
    options: dict[str, Any] = {}
    if name == "learning-curves":
        options["top"] = top
    if name == "contour" and params:
        options["params"] = list(params)
    try:
        analysis = (
            load(int(source), storage=ctx.obj["storage"]) if source.isdigit() else load(source)
        )
    except (FileNotFoundError, LookupError, TypeError) as exc:
        fail(str(exc))
    except Exception as exc:  # an unknown id: the store's own message
        fail(f"experiment {source}: {exc}")
    with analysis:
        try:
            figure = make(name, analysis, **options)
        except (ValueError, ImportError) as exc:
            fail(str(exc))
        try:
            written = write_figure(figure, Path(output))
        except ExportError as exc:
            fail(str(exc))
    click.echo(f"Wrote {name} of experiment {analysis.experiment_id} to {written}")
