"""``DistributedContext``: the ranks of one trial and collectives over Python objects between
them (Determined's names and semantics).

The chief (rank 0) is the hub of every global collective, each node's local chief
(``local_rank == 0``) the hub of its node's local ones (:mod:`ridgeline.core.channel`). These
collectives coordinate the workers (which operation, whether to preempt, which checkpoint);
they are not a replacement for the training framework's own tensor collectives.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from ridgeline.core.channel import Address, ChannelError, Hub, Spoke
from ridgeline.trial import env

CHIEF_PORT = 12360  # TCP port of the chief's hub when a trial spans nodes (Determined's)


def _secret() -> bytes:
    """What the processes of this trial attempt share and strangers do not: the attempt's
    token under ridgeline, else ``RIDGELINE_DIST_SECRET``, else torchrun's run identity (only
    good on one machine, where the hub's socket sits in an owner-only folder)."""
    for name in (env.TOKEN, env.DIST_SECRET):
        if os.environ.get(name):
            return os.environ[name].encode()
    torchrun = [os.environ.get(n) for n in ("TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT")]
    if all(torchrun):
        return ("torchrun:" + ":".join(str(part) for part in torchrun)).encode()
    raise ChannelError(
        "a DistributedContext with size > 1 needs the processes of one trial to share a "
        f"secret: run the trial under ridgeline (or torchrun), or set {env.DIST_SECRET} to the "
        "same random string in every process"
    )


def _socket_folder() -> Path:
    """``$TMPDIR/ridgeline-<uid>``: owner-only, so no other user can join a trial's hub."""
    folder = Path(tempfile.gettempdir()) / f"ridgeline-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise ChannelError(f"{folder} is not a folder of this user's; remove it and retry")
    if info.st_mode & 0o077:
        os.chmod(folder, 0o700)
    return folder


class DistributedContext:
    """Ranks and collectives over Python objects for the processes of one trial."""

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
        self.rank, self.size = int(rank), int(size)
        self.local_rank, self.local_size = int(local_rank), int(local_size)
        self.cross_rank, self.cross_size = int(cross_rank), int(cross_size)
        self._check()
        self.chief_ip = chief_ip
        if self.cross_size > 1 and not chief_ip:
            chief_ip = os.environ.get(env.CHIEF_IP)
            if not chief_ip:
                raise ValueError(
                    f"this trial spans {self.cross_size} machines: give chief_ip (the address "
                    f"of rank 0's machine) or set {env.CHIEF_IP}"
                )
            self.chief_ip = chief_ip
        self._hub: Hub | None = None
        self._spoke: Spoke | None = None
        self._local_hub: Hub | None = None
        self._local_spoke: Spoke | None = None
        self._closed = False
        if self.size > 1:
            self._connect()

    def _check(self) -> None:
        fields = {
            "rank": (self.rank, self.size, "size"),
            "local_rank": (self.local_rank, self.local_size, "local_size"),
            "cross_rank": (self.cross_rank, self.cross_size, "cross_size"),
        }
        for name, (value, bound, bound_name) in fields.items():
            if bound < 1 or not 0 <= value < bound:
                raise ValueError(
                    f"{name}={value} must be in 0..{bound_name}-1 ({bound_name}={bound})"
                )
        if self.local_size * self.cross_size != self.size:
            raise ValueError(
                f"size={self.size} must equal local_size x cross_size "
                f"({self.local_size} x {self.cross_size})"
            )

    # -- set-up ------------------------------------------------------------------------------
    def _connect(self) -> None:
        secret = _secret()
        key = hashlib.sha256(b"ridgeline distributed\0" + secret).digest()
        name = hashlib.sha256(b"ridgeline rendezvous\0" + secret).hexdigest()[:20]
        folder = _socket_folder()
        if self.cross_size == 1:
            chief: Address = ("unix", str(folder / f"{name}.sock"))
            listen = chief
        else:
            port = int(os.environ.get(env.CHIEF_PORT) or CHIEF_PORT)
            chief = ("tcp", (self.chief_ip, port))
            listen = ("tcp", ("0.0.0.0", port))
        try:
            if self.rank == 0:
                self._hub = Hub(listen, list(range(1, self.size)), key)
            else:
                self._spoke = Spoke(chief, self.rank, key)
            if self.local_size > 1:
                local: Address = ("unix", str(folder / f"{name}-{self.cross_rank}.sock"))
                base = self.cross_rank * self.local_size
                if self.local_rank == 0:
                    ranks = list(range(base + 1, base + self.local_size))
                    self._local_hub = Hub(local, ranks, key)
                else:
                    self._local_spoke = Spoke(local, self.rank, key)
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_torch_distributed(cls, chief_ip: str | None = None) -> DistributedContext:
        """Ranks from the environment ``torchrun`` sets (RANK, WORLD_SIZE, LOCAL_RANK, ...)."""
        environ = os.environ
        try:
            return cls(
                rank=int(environ["RANK"]),
                size=int(environ["WORLD_SIZE"]),
                local_rank=int(environ["LOCAL_RANK"]),
                local_size=int(environ["LOCAL_WORLD_SIZE"]),
                cross_rank=int(environ["GROUP_RANK"]),
                cross_size=int(environ.get("GROUP_WORLD_SIZE") or _groups(environ)),
                chief_ip=chief_ip or environ.get(env.CHIEF_IP) or environ.get("MASTER_ADDR"),
            )
        except KeyError as exc:
            raise RuntimeError(
                f"{exc.args[0]} is not set: from_torch_distributed() runs in processes that "
                "torchrun (or ridgeline's torch_distributed launcher) started"
            ) from None

    @classmethod
    def from_horovod(cls, hvd: Any, chief_ip: str | None = None) -> DistributedContext:
        return cls(
            rank=hvd.rank(),
            size=hvd.size(),
            local_rank=hvd.local_rank(),
            local_size=hvd.local_size(),
            cross_rank=hvd.cross_rank(),
            cross_size=hvd.cross_size(),
            chief_ip=chief_ip or os.environ.get(env.CHIEF_IP),
        )

    @classmethod
    def from_deepspeed(cls, chief_ip: str | None = None) -> DistributedContext:
        environ = os.environ
        return cls(
            rank=int(environ["RANK"]),
            size=int(environ["WORLD_SIZE"]),
            local_rank=int(environ["LOCAL_RANK"]),
            local_size=int(environ["LOCAL_SIZE"]),
            cross_rank=int(environ["CROSS_RANK"]),
            cross_size=int(environ["CROSS_SIZE"]),
            chief_ip=chief_ip or environ.get(env.CHIEF_IP),
        )

    # -- ranks -------------------------------------------------------------------------------
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

    # -- collectives -------------------------------------------------------------------------
    def gather(self, stuff: Any) -> list[Any] | None:
        """Everyone's ``stuff`` on the chief (in rank order); None on the other ranks."""
        return _gather(self._hub, self._spoke, stuff)

    def gather_local(self, stuff: Any) -> list[Any] | None:
        """This machine's ``stuff`` on its local chief; None on the other local ranks."""
        return _gather(self._local_hub, self._local_spoke, stuff)

    def allgather(self, stuff: Any) -> list[Any]:
        """Everyone's ``stuff``, in rank order, on every rank."""
        return _allgather(self._hub, self._spoke, stuff)

    def allgather_local(self, stuff: Any) -> list[Any]:
        return _allgather(self._local_hub, self._local_spoke, stuff)

    def broadcast(self, stuff: Any = None) -> Any:
        """The chief's ``stuff`` on every rank (what the others pass is ignored)."""
        return _broadcast(self._hub, self._spoke, stuff)

    def broadcast_local(self, stuff: Any = None) -> Any:
        return _broadcast(self._local_hub, self._local_spoke, stuff)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for end in (self._hub, self._spoke, self._local_hub, self._local_spoke):
            if end is not None:
                end.close()

    def __enter__(self) -> DistributedContext:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _groups(environ: os._Environ[str]) -> int:
    return int(environ["WORLD_SIZE"]) // int(environ["LOCAL_WORLD_SIZE"])


def _gather(hub: Hub | None, spoke: Spoke | None, stuff: Any) -> list[Any] | None:
    if hub is not None:
        out = [stuff, *(value for _, value in hub.gather())]
        hub.broadcast(None)  # nobody starts the next collective before this one is done
        return out
    if spoke is not None:
        spoke.send(stuff)
        spoke.recv()
        return None
    return [stuff]


def _allgather(hub: Hub | None, spoke: Spoke | None, stuff: Any) -> list[Any]:
    if hub is not None:
        out = [stuff, *(value for _, value in hub.gather())]
        hub.broadcast(out)
        return out
    if spoke is not None:
        spoke.send(stuff)
        return list(spoke.recv())
    return [stuff]


def _broadcast(hub: Hub | None, spoke: Spoke | None, stuff: Any) -> Any:
    if hub is not None:
        hub.broadcast(stuff)
        return stuff
    if spoke is not None:
        return spoke.recv()
    return stuff
