"""A small local certificate authority in ``instance/`` so tablets talk HTTPS to the booth node.

On first start beyond loopback the node creates ``ca.pem`` / ``ca_key.pem`` (the CA, 10 years) and a
server certificate for its addresses signed by it. A tablet installs ``ca.pem`` once (offered on the
enrollment page with its SHA-256 fingerprint) and then trusts the node without warnings.
"""
from __future__ import annotations

import ipaddress
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from booth.instance import write_private

CA_CERT, CA_KEY = "ca.pem", "ca_key.pem"
SERVER_CERT, SERVER_KEY = "server.pem", "server_key.pem"


def _write_key(path: Path, key) -> None:
    write_private(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))


def _load_key(path: Path):
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def ensure_ca(folder) -> x509.Certificate:
    folder = Path(folder)
    cert_path, key_path = folder / CA_CERT, folder / CA_KEY
    if cert_path.exists() and key_path.exists():
        return x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Vínculo booth node"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Vínculo local CA")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert


def interface_addresses() -> set[str]:
    """This machine's own addresses (the booth Wi-Fi's among them), without extra packages.

    Linux: the IPv4 address of every interface (``SIOCGIFADDR``) and the global IPv6 ones
    (``/proc/net/if_inet6``). Everywhere: the source address towards a documentation address
    (a UDP ``connect`` sends no packet). Link-local addresses are left out.
    """
    found: set[str] = set()
    try:
        import fcntl
        import struct

        for _index, name in socket.if_nameindex():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))
                except OSError:  # no IPv4 address on this interface
                    continue
                found.add(socket.inet_ntoa(packed[20:24]))
    except (ImportError, OSError):
        pass
    try:
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 4 and int(fields[3], 16) == 0:  # scope 0: global (incl. unique local)
                found.add(str(ipaddress.IPv6Address(bytes.fromhex(fields[0]))))
    except (OSError, ValueError):
        pass
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))
                found.add(s.getsockname()[0].split("%")[0])
        except OSError:
            pass
    usable = (ipaddress.ip_address(a) for a in found)
    return {str(a) for a in usable if not (a.is_link_local or a.is_unspecified)}


def local_names(host: str) -> tuple[list[str], list[str]]:
    """DNS names and IP addresses the server certificate must cover: loopback, the host name and
    every address of this machine, so a tablet on the booth Wi-Fi can use the node's IP address."""
    dns, ips = {"localhost"}, {"127.0.0.1", "::1"}
    try:
        hostname = socket.gethostname()
        dns.add(hostname)
        for info in socket.getaddrinfo(hostname, None):
            ips.add(info[4][0].split("%")[0])
    except OSError:
        pass
    ips |= interface_addresses()
    if host and host not in ("0.0.0.0", "::", ""):
        try:
            ipaddress.ip_address(host)
            ips.add(host)
        except ValueError:
            dns.add(host)
    return sorted(dns), sorted(ips)


def ensure_server_cert(folder, host: str, extra_names: list[str] | None = None) -> tuple[Path, Path]:
    folder = Path(folder)
    ca_cert = ensure_ca(folder)
    ca_key = _load_key(folder / CA_KEY)
    dns, ips = local_names(host)
    for name in extra_names or []:  # VINCULO_TLS_NAMES: more names or addresses, comma-separated
        try:
            ips.append(str(ipaddress.ip_address(name)))
        except ValueError:
            dns.append(name)
    dns, ips = sorted(set(dns)), sorted(set(ips))
    cert_path, key_path = folder / SERVER_CERT, folder / SERVER_KEY
    now = datetime.now(timezone.utc)
    if cert_path.exists() and key_path.exists():
        current = x509.load_pem_x509_certificate(cert_path.read_bytes())
        try:
            san = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            have_dns = set(san.get_values_for_type(x509.DNSName))
            have_ip = {str(i) for i in san.get_values_for_type(x509.IPAddress)}
        except x509.ExtensionNotFound:
            have_dns, have_ip = set(), set()
        if (set(dns) <= have_dns and set(ips) <= have_ip and current.not_valid_after_utc - now > timedelta(days=30)
                and current.issuer == ca_cert.subject):
            return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    alt = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def fingerprint(cert: x509.Certificate) -> str:
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


# Light helpers live in tls_info (no cryptography import, so a loopback node stays small).
from booth.tls_info import ca_certificate_pem, ca_summary, tls_wanted  # noqa: E402,F401
