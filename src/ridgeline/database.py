"""``ridgeline.database`` is ``ridgeline.sherpa.database`` (SHERPA's ``sherpa.database``, which
holds the trial-side ``Client``) under the name SHERPA scripts import."""

import sys

from ridgeline.sherpa import database as _database
from ridgeline.sherpa.database import Client

__all__ = ["Client"]

sys.modules[__name__] = _database
