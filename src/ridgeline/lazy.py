"""Module attributes that load on first use: what keeps ``import ridgeline`` light.

A package's module-level ``__getattr__`` hands the name to ``load_attribute`` with its own
``resolve``; the value is kept in the package, so each name is resolved once. Importing this
module costs nothing (no ``typing``: trial processes import it).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def load_attribute(
    module: str, namespace: dict[str, Any], name: str, resolve: Callable[[str], Any]
) -> Any:
    """``resolve(name)``, stored in the module's ``namespace`` (its ``globals()``) so Python
    finds it there from now on. ``resolve`` raises AttributeError for a name it does not know;
    the error then names ``module``, as Python's own does."""
    try:
        value = resolve(name)
    except AttributeError:
        raise AttributeError(f"module {module!r} has no attribute {name!r}") from None
    namespace[name] = value
    return value
