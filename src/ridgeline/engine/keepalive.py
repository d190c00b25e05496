"""Keeping a coordinator's experiment lease alive while it runs.

The store fences every write on the lease token, so a coordinator whose lease was taken over
cannot corrupt anything; renewing it here is what keeps a live coordinator from being taken
over. Renewal runs in a worker thread: a store that is retrying through an outage must not
freeze the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ridgeline.errors import LeaseLost, StoreError
from ridgeline.store.base import Store

log = logging.getLogger("ridgeline")

__all__ = ["keep_lease"]


async def keep_lease(
    store: Store,
    experiment_id: int,
    token: int,
    ttl: float,
    on_lost: Callable[[LeaseLost], None],
) -> None:
    """Renew the lease every third of ``ttl`` until cancelled; call ``on_lost`` and return
    when another holder has taken it over."""
    while True:
        await asyncio.sleep(ttl / 3)
        try:
            await asyncio.to_thread(store.renew_lease, experiment_id, token, ttl)
        except LeaseLost as exc:
            log.error("%s", exc)
            on_lost(exc)
            return
        except StoreError as exc:  # e.g. StorageUnavailable: writes report it; try again
            log.warning("could not renew the lease on experiment %d: %s", experiment_id, exc)
