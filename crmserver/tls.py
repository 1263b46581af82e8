"""TLS files for serving the emulator over HTTPS, and a throwaway certificate authority.

``trackbox demo`` and ``trackbox-crm serve --tls-self-signed`` need HTTPS without a real
certificate: :func:`make_throwaway_ca` writes a private CA and a loopback server certificate
signed by it (``cryptography`` only, no test libraries); clients trust the CA file.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Loopback names a local emulator is reached by.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
CA_FILE = "ca.pem"
CERT_FILE = "server.pem"
KEY_FILE = "server-key.pem"


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS server: ``cert`` (the server certificate, optionally followed by
    its chain), ``key`` (its private key) and ``ca`` (the authority a client verifies with,
    when it is not a public one)."""

    cert: str
    key: str
    ca: str | None = None


class TlsFilesError(Exception):
    """A certificate or key file cannot be used; ``path`` names it, ``reason`` says why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def check_tls_files(files: TlsFiles) -> None:
    """Raise :class:`TlsFilesError` unless ``files.cert`` and ``files.key`` are readable PEM
    files that belong together (the key is the certificate's)."""
    for path in (files.cert, files.key):
        if not os.path.isfile(path):
            raise TlsFilesError(path, "no such file")
        if not os.access(path, os.R_OK):
            raise TlsFilesError(path, "not readable")
    try:
        with open(files.cert, "rb") as f:
            certificate = x509.load_pem_x509_certificate(f.read())
    except (OSError, ValueError) as exc:
        raise TlsFilesError(files.cert, f"not a PEM certificate ({exc})") from exc
    try:
        with open(files.key, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise TlsFilesError(files.key, f"not an unencrypted PEM private key ({exc})") from exc
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    if key.public_key().public_bytes(encoding, public) != certificate.public_key().public_bytes(
        encoding, public
    ):
        raise TlsFilesError(files.key, f"is not the private key of the certificate {files.cert}")
    # Last word to OpenSSL, which is what serves them.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(files.cert, files.key)
    except ssl.SSLError as exc:
        raise TlsFilesError(files.cert, f"OpenSSL refuses it with its key ({exc})") from exc


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)  # an existing file keeps its old mode through O_CREAT


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _validity() -> tuple[datetime.datetime, datetime.datetime]:
    """From an hour ago (so a client clock a little behind still accepts the certificates)
    to 30 days ahead."""
    now = datetime.datetime.now(datetime.UTC)
    return now - datetime.timedelta(hours=1), now + datetime.timedelta(days=30)


def _ca_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    start: datetime.datetime,
    end: datetime.datetime,
) -> x509.Certificate:
    """The self-signed CA, limited to signing server certificates directly (path length 0)."""
    return (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )


def _server_certificate(
    key: ec.EllipticCurvePrivateKey,
    hostnames: Sequence[str],
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    start: datetime.datetime,
    end: datetime.datetime,
) -> x509.Certificate:
    """The server certificate for ``hostnames`` (all as subject alternative names, which is
    what clients check), signed by the CA."""
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([_general_name(h) for h in hostnames]), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )


def make_throwaway_ca(directory: str | Path, hostnames: Sequence[str] = LOOPBACK_NAMES) -> TlsFiles:
    """Write a new CA (``ca.pem``) and a server certificate for ``hostnames`` signed by it
    (``server.pem``, key ``server-key.pem``, mode 0600) into ``directory``. The CA's own key
    is never written: once this returns, nothing else can be signed by the CA a client
    trusts."""
    if not hostnames:
        raise ValueError("make_throwaway_ca needs at least one host name")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    start, end = _validity()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trackbox-crm throwaway CA")])
    ca_cert = _ca_certificate(ca_key, ca_name, start, end)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _server_certificate(key, hostnames, ca_key, ca_name, start, end)

    pem = serialization.Encoding.PEM
    _write(folder / KEY_FILE, _key_pem(key), 0o600)
    _write(folder / CA_FILE, ca_cert.public_bytes(pem), 0o644)
    _write(folder / CERT_FILE, cert.public_bytes(pem), 0o644)
    return TlsFiles(
        cert=str(folder / CERT_FILE), key=str(folder / KEY_FILE), ca=str(folder / CA_FILE)
    )
