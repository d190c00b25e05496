"""Write a figure to a file a person can open without network access: a standalone HTML
page with plotly.js embedded from the installed plotly package, or an image through
kaleido (which drives a Chromium)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["IMAGE_SUFFIXES", "SUFFIXES", "write_figure"]

IMAGE_SUFFIXES = (".png", ".svg", ".pdf", ".jpeg", ".jpg", ".webp")
SUFFIXES = (".html", *IMAGE_SUFFIXES)


class ExportError(RuntimeError):
    """The figure could not be written in the format asked for; the message says why."""


def write_figure(figure: Any, path: str | Path) -> Path:
    """``figure`` to ``path``, the format chosen by the suffix."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in SUFFIXES:
        raise ExportError(
            f"{target}: unknown output format {suffix or '(no suffix)'!r}; "
            f"use one of {', '.join(SUFFIXES)}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".html":
        # include_plotlyjs=True embeds the package's own plotly.min.js: no CDN, no network.
        figure.write_html(str(target), include_plotlyjs=True, full_html=True, include_mathjax=False)
        return target
    try:
        import kaleido  # noqa: F401  # lazy: optional extra (images)
    except ImportError:
        raise ExportError(
            f"{target}: writing {suffix} images needs kaleido and a Chrome/Chromium browser: "
            f"pip install kaleido (Debian: apt-get install chromium); or write .html instead"
        ) from None
    try:
        figure.write_image(str(target))
    except Exception as exc:  # kaleido reports a missing browser in its own words
        raise ExportError(
            f"{target}: kaleido could not render the image ({type(exc).__name__}: {exc}); it "
            f"needs Chrome or Chromium (Debian: apt-get install chromium, or set BROWSER_PATH); "
            f"or write .html instead"
        ) from exc
    return target
