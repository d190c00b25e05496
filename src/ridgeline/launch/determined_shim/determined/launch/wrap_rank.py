"""``python3 -m determined.launch.wrap_rank``: ridgeline's ``wrap_rank``."""

import runpy

runpy.run_module("ridgeline.launch.wrap_rank", run_name="__main__", alter_sys=True)
