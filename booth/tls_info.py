"""What the web pages need to know about the node's TLS, without importing ``cryptography``
(keeps the idle loopback node small): the CA certificate, its SHA-256 fingerprint, whether to serve TLS."""
from __future__ import annotations

import base64
import hashlib
import ipaddress
from pathlib import Path

CA_CERT = "ca.pem"


def ca_certificate_pem(folder) -> bytes | None:
    path = Path(folder) / CA_CERT
    return path.read_bytes() if path.exists() else None


def pem_fingerprint(pem: bytes) -> str:
    """SHA-256 over the certificate's DER bytes, as browsers and ``openssl x509 -fingerprint`` show it."""
    body = b"".join(line for line in pem.strip().splitlines() if line and not line.startswith(b"-----"))
    der = base64.b64decode(body)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def ca_summary(folder) -> dict | None:
    pem = ca_certificate_pem(folder)
    if pem is None:
        return None
    return {"fingerprint": pem_fingerprint(pem)}


def tls_wanted(mode: str, host: str) -> bool:
    mode = (mode or "auto").lower()
    if mode in ("on", "1", "true", "yes"):
        return True
    if mode in ("off", "0", "false", "no"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host != "localhost"
