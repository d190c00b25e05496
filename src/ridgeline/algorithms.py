"""``ridgeline.algorithms`` is ``ridgeline.sherpa.algorithms`` under its older name.

Scripts ported from SHERPA import ``ridgeline.algorithms`` and its submodules
(``ridgeline.algorithms.bayesian_optimization``); this module makes each of those names the
very module under ``ridgeline.sherpa``, so classes are the same objects whichever path
imported them.
"""

import sys

from ridgeline.sherpa import algorithms as _algorithms
from ridgeline.sherpa.algorithms import *  # noqa: F403  (the names, for type checkers)

for _name in ("bayesian_optimization", "core", "successive_halving"):
    sys.modules[f"{__name__}.{_name}"] = getattr(_algorithms, _name)
sys.modules[__name__] = _algorithms
