"""``python3 -m determined.launch.torch_distributed``: ridgeline's ``torch_distributed``."""

import runpy

runpy.run_module("ridgeline.launch.torch_distributed", run_name="__main__", alter_sys=True)
