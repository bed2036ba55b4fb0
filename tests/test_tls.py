"""The node's certificate authority: the real server (``python -m booth.serve``) over HTTPS.

A subprocess on a temporary instance folder and SQLite file (migrated with ``flask db upgrade``,
as ``make run`` does), ``VINCULO_TLS=on`` on loopback, a free port. A client that trusts
``instance/ca.pem`` gets in; one with the default trust store is refused.
"""
from __future__ import annotations

import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from cryptography import x509

from booth import create_app
from booth.config import ROOT
from booth.tls import fingerprint, interface_addresses, tls_wanted

FAST_ARGON2 = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST_KIB": 1024}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_env(instance: Path, db_url: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VINCULO_") and k not in ("DATABASE_URL", "HOST", "PORT")}
    env.update(VINCULO_INSTANCE_DIR=str(instance), DATABASE_URL=db_url, **extra)
    return env


def set_up_node(instance: Path, db_url: str) -> None:
    """First-run setup through the services, so the enrollment page and the CA route are reachable."""
    from booth.events import services as events
    from booth.extensions import db

    app = create_app({"INSTANCE_DIR": str(instance), "SQLALCHEMY_DATABASE_URI": db_url, **FAST_ARGON2})
    with app.app_context():
        events.first_run_setup(db.session, event_name="Marcha del Orgullo", event_day=date.today(), place="CDMX",
                               timezone="America/Mexico_City", booth_name="Módulo 1", coordinator_code="C01",
                               pin="482913", now=datetime.now(timezone.utc))
        db.session.commit()
        db.engine.dispose()


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"the server did not listen on {port} within {timeout} s:\n{log.read_text()}")


@contextmanager
def serving(folder: Path, **env_extra):
    """A migrated, set-up node in ``folder`` served by ``python -m booth.serve``; always stopped."""
    instance = folder / "instance"
    db_url = f"sqlite:///{folder / 'node.sqlite3'}"
    env = node_env(instance, db_url)
    if not instance.exists():
        subprocess.run([sys.executable, "-m", "booth.instance", str(instance)], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        set_up_node(instance, db_url)

    port = free_port()
    log = folder / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "booth.serve"], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, env={**env, "PORT": str(port), **env_extra})
    try:
        wait_for_port(port, proc, log)
        yield {"port": port, "url": f"https://127.0.0.1:{port}", "instance": instance, "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory):
    """TLS forced on loopback (``VINCULO_TLS=on``)."""
    with serving(tmp_path_factory.mktemp("tls_node"), VINCULO_TLS="on", HOST="127.0.0.1") as node:
        yield node


def trusting(instance: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(instance / "ca.pem"))


def get(url: str, context: ssl.SSLContext):
    return urllib.request.urlopen(url, context=context, timeout=10)


def test_https_with_the_node_ca_succeeds(tls_node):
    with get(tls_node["url"] + "/healthz", trusting(tls_node["instance"])) as r:
        assert r.status == 200
        body = json.loads(r.read())
    assert body["status"] == "ok"
    assert body["role"] == "booth"
    assert body["db"] == "ok"


def test_https_without_the_node_ca_is_refused(tls_node):
    with pytest.raises(urllib.error.URLError) as e:
        get(tls_node["url"] + "/healthz", ssl.create_default_context())
    assert isinstance(e.value.reason, ssl.SSLCertVerificationError)


def test_every_tablet_keeps_its_connection_between_taps(tls_node):
    """25 tablets (more than cheroot's default of 10 waiting keep-alive connections): no answer closes the
    connection, so no tap pays a new TLS handshake."""
    import http.client

    context = trusting(tls_node["instance"])
    tablets = [http.client.HTTPSConnection("127.0.0.1", tls_node["port"], context=context, timeout=10)
               for _ in range(25)]
    try:
        sockets = []
        for tap in range(2):
            for conn in tablets:
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                r.read()
                assert r.status == 200 and (r.getheader("Connection") or "").lower() != "close"
                if tap == 0:
                    sockets.append(conn.sock)
        assert [conn.sock for conn in tablets] == sockets  # the second tap went over the first tap's connection
    finally:
        for conn in tablets:
            conn.close()


def test_enrollment_offers_the_ca_and_its_fingerprint(tls_node):
    ca_pem = (tls_node["instance"] / "ca.pem").read_bytes()
    ctx = trusting(tls_node["instance"])
    with get(tls_node["url"] + "/enroll/ca.pem", ctx) as r:
        assert r.status == 200
        assert r.read() == ca_pem
    with get(tls_node["url"] + "/enroll", ctx) as r:
        assert r.status == 200
        page = r.read().decode()
    assert fingerprint(x509.load_pem_x509_certificate(ca_pem)) in page


def test_private_keys_are_readable_only_by_their_owner(tls_node):
    for name in ("ca_key.pem", "server_key.pem", "secret_key"):
        mode = (tls_node["instance"] / name).stat().st_mode & 0o777
        assert mode == 0o600, f"{name} has mode {mode:o}"


def test_beyond_loopback_tablets_reach_the_node_by_its_address(tmp_path):
    """``HOST=0.0.0.0`` (the booth Wi-Fi): HTTPS by default, and the certificate covers the machine's
    own addresses, so a tablet that trusts the CA can use ``https://<node address>:PORT``."""
    addresses = sorted(a for a in interface_addresses()  # 0.0.0.0 listens on IPv4 only
                       if ipaddress.ip_address(a).version == 4 and not ipaddress.ip_address(a).is_loopback)
    if not addresses:
        pytest.skip("this machine has no IPv4 address beyond loopback")
    with serving(tmp_path, HOST="0.0.0.0") as node:
        ctx = trusting(node["instance"])
        for address in addresses:
            with get(f"https://{address}:{node['port']}/healthz", ctx) as r:
                assert r.status == 200, address


@pytest.mark.parametrize("mode, host, expected", [
    ("auto", "127.0.0.1", False),
    ("auto", "::1", False),
    ("auto", "localhost", False),
    ("auto", "0.0.0.0", True),
    ("auto", "192.168.4.1", True),
    ("auto", "booth.local", True),
    ("on", "127.0.0.1", True),
    ("off", "0.0.0.0", False),
    (None, "0.0.0.0", True),
])
def test_tls_is_on_beyond_loopback(mode, host, expected):
    assert tls_wanted(mode, host) is expected
