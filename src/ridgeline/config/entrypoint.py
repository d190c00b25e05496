"""Is the entrypoint's script in the context directory? Checked when an experiment is created,
so a typo is one clear line instead of every trial failing with "No such file"."""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Sequence
from pathlib import Path

from ridgeline.config.checks import Problems, show

__all__ = ["check_entrypoint", "check_launcher", "launcher_of", "own_command"]

_PYTHON = re.compile(r"^python[\d.]*$")
_SHELLS = ("sh", "bash", "dash", "zsh", "ksh")
# Interpreter options that take the next argument as their value.
_PYTHON_VALUED = ("W", "X", "Q")  # single-letter options that take a value
_SHELL_VALUED = ("-o", "-O", "+o", "+O")


def check_entrypoint(p: Problems, argv: Sequence[str], context_dir: str | os.PathLike[str]) -> None:
    """Record a problem when the script ``argv`` runs is missing from ``context_dir``.

    Understood: ``python3 train.py``, ``python -m pkg.mod`` (looked for in the context, then
    among installed modules), ``bash run.sh`` / ``sh run.sh``, and ``./run.sh`` or any
    program given as a path. Other commands (``torchrun ...``, a program on PATH) pass."""
    context = Path(context_dir)
    program = os.path.basename(argv[0])
    if _PYTHON.match(program):
        script, module = _python_target(argv[1:])
        if module is not None:
            _check_module(p, module, context, argv)
        elif script is not None:
            _check_file(p, script, context, argv)
    elif program in _SHELLS:
        script = _first_operand(argv[1:], _SHELL_VALUED)
        if script is not None:
            _check_file(p, script, context, argv)
    elif "/" in argv[0]:
        _check_file(p, argv[0], context, argv)


def _python_target(args: Sequence[str]) -> tuple[str | None, str | None]:
    """(script, module) that ``python ARGS`` runs; (None, None) for ``-c`` or a bare REPL.
    Short options combine as Python reads them: ``-um pkg``, ``-uc CODE``, ``-Wignore``."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return (args[i + 1] if i + 1 < len(args) else None), None
        if arg == "-":
            return None, None
        if not arg.startswith("-"):
            return arg, None
        if arg.startswith("--"):  # long options (--version, --help) take no value we need
            i += 1
            continue
        for k, flag in enumerate(arg[1:], start=1):
            rest = arg[k + 1 :]
            if flag == "c":
                return None, None
            if flag == "m":
                if rest:
                    return None, rest
                return None, args[i + 1] if i + 1 < len(args) else None
            if flag in _PYTHON_VALUED:
                i += 0 if rest else 1  # the value is the rest of this word or the next one
                break
        i += 1
    return None, None


def _first_operand(args: Sequence[str], valued: Sequence[str]) -> str | None:
    """The script a shell runs; None for ``-c`` (alone or in a group such as ``-lc``)."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return args[i + 1] if i + 1 < len(args) else None
        if arg in valued:
            i += 2
            continue
        if not arg.startswith(("-", "+")):
            return arg
        if not arg.startswith("--") and "c" in arg[1:]:
            return None
        i += 1
    return None


def _check_file(p: Problems, script: str, context: Path, argv: Sequence[str]) -> None:
    path = Path(os.path.expanduser(script))
    full = path if path.is_absolute() else context / path
    if full.is_file():
        return
    where = "" if path.is_absolute() else f" in the context directory {context}"
    state = "is a directory" if full.is_dir() else "not found"
    p.add(
        "entrypoint",
        f"script {script!r} {state}{where} (got {show(' '.join(argv))}); "
        f"fix the path, or create the experiment with the folder that holds it as context",
    )


def _check_module(p: Problems, module: str, context: Path, argv: Sequence[str]) -> None:
    if module in _OWN_LAUNCHERS:
        return  # ridgeline runs its own
    parts = module.split(".")
    if not all(part.isidentifier() for part in parts):
        p.add("entrypoint", f"{module!r} is not a module name (got {show(' '.join(argv))})")
        return
    base = context.joinpath(*parts)
    if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file() or base.is_dir():
        return
    if (context / parts[0]).is_dir() or (context / f"{parts[0]}.py").is_file():
        p.add(
            "entrypoint",
            f"module {module!r} not found in the context directory {context} "
            f"(got {show(' '.join(argv))}); check the module path",
        )
        return
    try:
        installed = importlib.util.find_spec(parts[0]) is not None
    except (ImportError, ValueError):
        installed = False
    if not installed:
        p.add(
            "entrypoint",
            f"module {module!r} is neither in the context directory {context} nor installed "
            f"(got {show(' '.join(argv))}); check the name",
        )


# -- multi-process trials ------------------------------------------------------------------

#: Launchers ridgeline runs: Determined's module name -> ridgeline's own.
_OWN_LAUNCHERS = {
    "determined.launch.torch_distributed": "ridgeline.launch.torch_distributed",
    "determined.launch.wrap_rank": "ridgeline.launch.wrap_rank",
}
#: Launchers of other frameworks, refused when the experiment is created.
_FOREIGN_PROGRAMS = ("horovodrun", "deepspeed", "mpirun", "mpiexec", "accelerate")
_DETERMINED_LAUNCH = "determined.launch."
#: Core-API calls that only work under a launcher ridgeline does not run.
_FOREIGN_CALLS = re.compile(r"\b(from_horovod|from_deepspeed|from_tf_config)\b")
UNSUPPORTED = "only torch.distributed trials (determined.launch.torch_distributed) are supported"


def launcher_of(argv: Sequence[str]) -> str | None:
    """The launcher ``argv`` runs (``determined.launch.torch_distributed``, ``torchrun``,
    ``horovodrun``...), or None. ``determined.launch.wrap_rank`` only labels output: not one."""
    program = os.path.basename(argv[0])
    if program in (*_FOREIGN_PROGRAMS, "torchrun"):
        return program
    if _PYTHON.match(program):
        _, module = _python_target(argv[1:])
        if module in ("torch.distributed.run", "torch.distributed.launch"):
            return module
        if module and module.startswith(_DETERMINED_LAUNCH) and not module.endswith("wrap_rank"):
            return module
    return None


def check_launcher(
    p: Problems, argv: Sequence[str], context_dir: str | os.PathLike[str] | None
) -> None:
    """Refuse, when the experiment is created, a trial that needs a launcher ridgeline does not
    run (Horovod, DeepSpeed, TensorFlow's, MPI), named in the entrypoint or called for by the
    script (read from the context directory)."""
    launcher = launcher_of(argv)
    if launcher is not None:
        if launcher in _OWN_LAUNCHERS or launcher in ("torchrun", "torch.distributed.run"):
            return
        p.add(
            "entrypoint",
            f"{launcher!r} is not supported: {UNSUPPORTED} (got {show(' '.join(argv))}); use "
            f"python3 -m determined.launch.torch_distributed python3 train.py",
        )
        return
    if context_dir is None:
        return
    program = os.path.basename(argv[0])
    script = _python_target(argv[1:])[0] if _PYTHON.match(program) else None
    if script is None:
        return
    path = Path(context_dir) / os.path.expanduser(script)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    found = _FOREIGN_CALLS.search(text)
    if found is not None:
        p.add(
            "entrypoint",
            f"{script} uses {found.group(1)}, which needs a launcher ridgeline does not run: "
            f"{UNSUPPORTED}; use DistributedContext.from_torch_distributed() under "
            f"determined.launch.torch_distributed",
        )


def own_command(argv: Sequence[str]) -> list[str]:
    """``argv`` with Determined's launcher modules replaced by ridgeline's
    (``python3 -m determined.launch.torch_distributed ...`` runs
    ``ridgeline.launch.torch_distributed``), unless Determined itself is installed."""
    out = list(argv)
    if not out or not _PYTHON.match(os.path.basename(out[0])):
        return out
    if importlib.util.find_spec("determined") is not None:
        return out
    for i, arg in enumerate(out[1:], start=1):
        if arg == "-m" and i + 1 < len(out) and out[i + 1] in _OWN_LAUNCHERS:
            out[i + 1] = _OWN_LAUNCHERS[out[i + 1]]
            break
        if arg.startswith("-m") and arg[2:] in _OWN_LAUNCHERS:
            out[i] = "-m" + _OWN_LAUNCHERS[arg[2:]]
            break
        if not arg.startswith("-"):
            break
    return out
