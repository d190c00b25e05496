"""Launchers for trials of several processes, as Determined's ``determined.launch``:
``python3 -m ridgeline.launch.torch_distributed [TORCHRUN_ARGS... --] SCRIPT...`` and
``python3 -m ridgeline.launch.wrap_rank RANK -- COMMAND...``. Entrypoints that name
``determined.launch.*`` are run with these."""
