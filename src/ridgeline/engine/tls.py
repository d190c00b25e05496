"""The coordinator's own TLS certificate: self-signed, made once per experiment and kept
(0600, in a 0700 folder of the experiment's output) so a resumed coordinator presents the same
one and re-attached trials keep trusting it. Trials trust it by its SHA-256 fingerprint
(handed to them with their token), not through a certificate authority.

``cryptography`` is imported here only, when a coordinator first needs TLS.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from ridgeline.private import FILE_MODE, private_dir

FOLDER = "coordinator-tls"
CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
VALID_DAYS = 3650  # trials pin the fingerprint: the dates only need to outlast the experiment


@dataclass(frozen=True)
class Certificate:
    """Where the certificate and its key are, and the fingerprint trials pin."""

    cert: Path
    key: Path
    sha256: str  # hex digest of the certificate's DER bytes

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert, self.key)
        return context


def fingerprint(cert_pem: bytes) -> str:
    """The SHA-256 hex digest of a PEM certificate's DER form (what trials compare)."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert_pem.decode("ascii"))).hexdigest()


def coordinator_certificate(output_dir: Path, hosts: list[str]) -> Certificate:
    """The experiment's certificate, made on first use (naming ``hosts``) and reused after."""
    folder = private_dir(output_dir / FOLDER)
    cert, key = folder / CERT_FILE, folder / KEY_FILE
    if not (cert.exists() and key.exists()):
        cert_pem, key_pem = _make(hosts)
        _write_private(key, key_pem)
        _write_private(cert, cert_pem)
    return Certificate(cert, key, fingerprint(cert.read_bytes()))


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a 0600 file created fresh, then renamed in place."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _make(hosts: list[str]) -> tuple[bytes, bytes]:
    """A new P-256 key and a self-signed certificate for ``hosts`` (PEM bytes each)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ridgeline coordinator")])
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    certificate = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem
