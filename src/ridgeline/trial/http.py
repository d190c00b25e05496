"""A minimal keep-alive HTTP/1.1 JSON client over a socket.

``http.client`` pulls in the email parser and ssl (about 25 ms of imports); a trial process
starts faster with this, and the coordinator's protocol needs nothing more: JSON bodies with a
Content-Length, on a local or cluster network. Over https (a coordinator beyond loopback) it
wraps the socket in TLS, importing ``ssl`` only then, and trusts the coordinator by its
certificate's SHA-256 fingerprint alone: a self-signed certificate, made per experiment.
"""

from __future__ import annotations

import select
import socket
import time

from ridgeline.errors import CertificateRefused

IDLE_CHECK = 1.0  # seconds idle after which a kept connection is checked before reuse


class HttpError(OSError):
    """The connection broke or the reply was not HTTP."""


class Connection:
    """One persistent connection; reconnects on the next request after an error."""

    def __init__(
        self, host: str, port: int, timeout: float = 60.0, fingerprint: str | None = None
    ) -> None:
        """``fingerprint`` (hex SHA-256 of the certificate): speak TLS and accept only the
        certificate with that fingerprint; None: plain HTTP."""
        self.host, self.port, self.timeout = host, port, timeout
        self.fingerprint = fingerprint
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._used = 0.0  # when the last reply arrived (monotonic)

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        """Send one request; returns (status, body). Raises OSError on any transport failure."""
        if self._sock is not None and time.monotonic() - self._used > IDLE_CHECK:
            if self._closed_by_peer():  # the server closes idle connections; start afresh
                self.close()
        if self._sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock if self.fingerprint is None else self._secure(sock)
            self._buffer = b""
        payload = body or b""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {len(payload)}")
        try:
            self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
            reply = self._read_response()
        except OSError:
            self.close()
            raise
        self._used = time.monotonic()
        return reply

    def _secure(self, sock: socket.socket) -> socket.socket:
        """``sock`` in TLS, once the certificate shown is the pinned one (before anything,
        the token included, is sent). A wrong certificate is CertificateRefused: final."""
        import hashlib  # lazy: keeps `import ridgeline.cli` light
        import hmac  # lazy: keeps `import ridgeline.cli` light
        import ssl  # lazy: keeps trial processes light

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = False  # the fingerprint below is the check
        context.verify_mode = ssl.CERT_NONE
        try:
            secure = context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        der = secure.getpeercert(binary_form=True) or b""
        shown = hashlib.sha256(der).hexdigest()
        if not hmac.compare_digest(shown, str(self.fingerprint).lower()):
            secure.close()
            raise CertificateRefused(
                f"the coordinator at {self.host}:{self.port} showed a certificate with SHA-256 "
                f"{shown}, not the pinned {self.fingerprint}; nothing was sent (a different "
                f"server, or a man in the middle)"
            )
        return secure

    def _closed_by_peer(self) -> bool:
        """True when the kept connection was closed by the server (or holds stray bytes)."""
        assert self._sock is not None
        if self.fingerprint is not None:  # TLS: recv cannot peek; readable means closing
            readable, _, _ = select.select([self._sock], [], [], 0)
            return bool(readable)
        self._sock.setblocking(False)
        try:
            self._sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False  # open, nothing to read: usable
        except OSError:
            return True
        finally:
            if self._sock is not None:
                self._sock.settimeout(self.timeout)
        return True

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            self._fill()
        head, self._buffer = self._buffer.split(marker, 1)
        return head

    def _fill(self) -> None:
        assert self._sock is not None
        chunk = self._sock.recv(65536)
        if not chunk:
            raise HttpError("connection closed by the coordinator")
        self._buffer += chunk

    def _read_response(self) -> tuple[int, bytes]:
        head = self._read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        try:
            status = int(head[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            raise HttpError(f"not an HTTP reply: {head[0]!r}") from None
        length = 0
        close = False
        for line in head[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    raise HttpError(f"bad Content-Length {value.strip()[:40]!r}") from None
            elif name == "connection" and value.strip().lower() == "close":
                close = True
            elif name == "transfer-encoding":
                raise HttpError("chunked replies are not supported")
        while len(self._buffer) < length:
            self._fill()
        data, self._buffer = self._buffer[:length], self._buffer[length:]
        if close:
            self.close()
        return status, data

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buffer = b""
