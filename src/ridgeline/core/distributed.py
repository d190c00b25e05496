"""``DistributedContext``: one process (rank 0 of 1) now, with the interface that multi-process
training fills later."""

from __future__ import annotations

from typing import Any


class DistributedContext:
    """Ranks and collectives over Python objects. Only ``size == 1`` is supported yet."""

    def __init__(
        self,
        *,
        rank: int = 0,
        size: int = 1,
        local_rank: int = 0,
        local_size: int = 1,
        cross_rank: int = 0,
        cross_size: int = 1,
        chief_ip: str | None = None,
        **_: Any,
    ) -> None:
        if size != 1:
            raise NotImplementedError(
                "multi-process training is not supported yet: run one process per trial"
            )
        self.rank, self.size = rank, size
        self.local_rank, self.local_size = local_rank, local_size
        self.cross_rank, self.cross_size = cross_rank, cross_size
        self.chief_ip = chief_ip

    def get_rank(self) -> int:
        return self.rank

    def get_local_rank(self) -> int:
        return self.local_rank

    def get_size(self) -> int:
        return self.size

    def get_local_size(self) -> int:
        return self.local_size

    def get_cross_rank(self) -> int:
        return self.cross_rank

    def get_cross_size(self) -> int:
        return self.cross_size

    def get_num_agents(self) -> int:
        return self.cross_size

    def gather(self, stuff: Any) -> list[Any] | None:
        return [stuff]

    def gather_local(self, stuff: Any) -> list[Any] | None:
        return [stuff]

    def allgather(self, stuff: Any) -> list[Any]:
        return [stuff]

    def allgather_local(self, stuff: Any) -> list[Any]:
        return [stuff]

    def broadcast(self, stuff: Any) -> Any:
        return stuff

    def broadcast_local(self, stuff: Any = None) -> Any:
        return stuff

    def close(self) -> None:
        """Nothing to release for one process."""
