"""Messages between the processes of one trial: a hub (the chief, or a node's local chief)
and one spoke per other process, as Determined's broadcast server and clients.

Python objects travel pickled, so nothing is unpickled before it is proven to come from the
same trial attempt: a joining spoke answers a fresh challenge with an HMAC of the trial's
secret, and every frame after that carries an HMAC over its sequence number and payload (a
replayed, reordered or injected frame is refused). On one machine the hub listens on a Unix
socket in an owner-only folder; across machines on TCP.

A process that dies closes its socket, so the others get :class:`ChannelError` at once instead
of waiting forever, and the trial's launcher ends every rank.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import secrets
import socket
import struct
import time
from typing import Any

DIGEST = hashlib.sha256
MAC_SIZE = 32
NONCE_SIZE = 32
_LENGTH = struct.Struct("!Q")
_RANK = struct.Struct("!I")
JOIN_TIMEOUT = 600.0  # seconds the hub waits for every spoke (ranks start at their own pace)


class ChannelError(ConnectionError):
    """Another process of the trial left, or a message failed authentication."""


Address = tuple[str, Any]  # ("unix", path) or ("tcp", (host, port))


def _mac(key: bytes, *parts: bytes) -> bytes:
    mac = hmac.new(key, digestmod=DIGEST)
    for part in parts:
        mac.update(part)
    return mac.digest()


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise ChannelError("the other process closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


class _Link:
    """One authenticated, ordered stream of pickled objects over a connected socket."""

    def __init__(self, sock: socket.socket, key: bytes, peer: str) -> None:
        self.sock = sock
        self.key = key
        self.peer = peer
        self._sent = 0
        self._received = 0

    def send(self, obj: Any) -> None:
        payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        mac = _mac(self.key, _LENGTH.pack(self._sent), payload)
        try:
            self.sock.sendall(_LENGTH.pack(len(payload)) + mac + payload)
        except OSError as exc:
            raise ChannelError(f"{self.peer} is gone: {exc}") from exc
        self._sent += 1

    def recv(self) -> Any:
        try:
            (size,) = _LENGTH.unpack(_recv_exact(self.sock, _LENGTH.size))
            mac = _recv_exact(self.sock, MAC_SIZE)
            payload = _recv_exact(self.sock, size)
        except ChannelError as exc:
            raise ChannelError(f"{self.peer} is gone: {exc}") from None
        except OSError as exc:
            raise ChannelError(f"{self.peer} is gone: {exc}") from exc
        if not hmac.compare_digest(mac, _mac(self.key, _LENGTH.pack(self._received), payload)):
            raise ChannelError(f"a message from {self.peer} failed authentication")
        self._received += 1
        return pickle.loads(payload)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _listen(address: Address) -> socket.socket:
    kind, where = address
    if kind == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(where):
            os.unlink(where)  # left by an earlier attempt of the same trial
        sock.bind(where)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(where)
    sock.listen(64)
    return sock


def _connect(address: Address, timeout: float) -> socket.socket:
    """Connect, retrying while the hub is not listening yet (ranks start at their own pace)."""
    kind, where = address
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        family = socket.AF_UNIX if kind == "unix" else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.connect(where)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            if time.monotonic() > deadline:
                message = f"the chief did not open {where} within {timeout:.0f} s"
                raise ChannelError(message) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
            continue
        if kind == "tcp":
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


class Hub:
    """The listening end: waits until each of ``ranks`` has joined, then talks to all."""

    def __init__(
        self, address: Address, ranks: list[int], key: bytes, timeout: float = JOIN_TIMEOUT
    ) -> None:
        self.links: dict[int, _Link] = {}
        server = _listen(address)
        server.settimeout(1.0)
        deadline = time.monotonic() + timeout
        try:
            while len(self.links) < len(ranks):
                if time.monotonic() > deadline:
                    missing = sorted(set(ranks) - set(self.links))
                    raise ChannelError(f"ranks {missing} did not join within {timeout:.0f} s")
                try:
                    sock, _ = server.accept()
                except TimeoutError:
                    continue
                rank = self._admit(sock, key, set(ranks) - set(self.links))
                if rank is None:
                    sock.close()
                else:
                    self.links[rank] = _Link(sock, key, f"rank {rank}")
        except BaseException:
            self.close()
            raise
        finally:
            server.close()
            if address[0] == "unix":
                try:  # everyone joined: nobody needs the name any more
                    os.unlink(address[1])
                except OSError:
                    pass

    @staticmethod
    def _admit(sock: socket.socket, key: bytes, expected: set[int]) -> int | None:
        """The rank a joining spoke proves to be, or None (a stranger, a duplicate)."""
        sock.settimeout(10.0)
        try:
            nonce = secrets.token_bytes(NONCE_SIZE)
            sock.sendall(nonce)
            raw = _recv_exact(sock, _RANK.size)
            proof = _recv_exact(sock, MAC_SIZE)
        except (OSError, ChannelError):
            return None
        (rank,) = _RANK.unpack(raw)
        if not hmac.compare_digest(proof, _mac(key, b"join", nonce, raw)):
            return None
        if rank not in expected:
            return None
        sock.settimeout(None)
        return rank

    def gather(self) -> list[tuple[int, Any]]:
        """One object from every spoke, in rank order."""
        return [(rank, self.links[rank].recv()) for rank in sorted(self.links)]

    def broadcast(self, obj: Any) -> None:
        for rank in sorted(self.links):
            self.links[rank].send(obj)

    def close(self) -> None:
        for link in self.links.values():
            link.close()
        self.links.clear()


class Spoke:
    """A joining process's end: one link to its hub."""

    def __init__(
        self, address: Address, rank: int, key: bytes, timeout: float = JOIN_TIMEOUT
    ) -> None:
        sock = _connect(address, timeout)
        try:
            sock.settimeout(timeout)
            nonce = _recv_exact(sock, NONCE_SIZE)
            raw = _RANK.pack(rank)
            sock.sendall(raw + _mac(key, b"join", nonce, raw))
            sock.settimeout(None)
        except (OSError, ChannelError) as exc:
            sock.close()
            raise ChannelError(f"could not join the chief at {address[1]}: {exc}") from exc
        self.link = _Link(sock, key, "the chief")

    def send(self, obj: Any) -> None:
        self.link.send(obj)

    def recv(self) -> Any:
        return self.link.recv()

    def close(self) -> None:
        self.link.close()
