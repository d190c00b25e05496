"""ridgeline's stand-in for ``determined``, on the path of ridgeline's Core-API trials only
when Determined is not installed: scripts that start workers with
``python3 -m determined.launch.wrap_rank`` (Determined's tutorial) run unchanged. The Core API
itself is ridgeline's: ``import ridgeline as det``."""


def __getattr__(name: str) -> object:
    raise AttributeError(
        f"determined.{name}: this is ridgeline's stand-in, which only runs determined.launch "
        "modules; write `import ridgeline as det` for the Core API"
    )
