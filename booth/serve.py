"""Serve a node the way ``make run`` does.

Loopback → waitress over HTTP. Beyond loopback (``HOST=0.0.0.0`` on the booth's Wi-Fi), or with
``VINCULO_TLS=on`` → cheroot over HTTPS with a certificate from the node's local CA.
"""
from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3
KEEP_ALIVE_CONNECTIONS = 200  # idle keep-alive connections kept open (tablets and displays of one booth)


def return_large_blocks() -> None:
    """Give argon2's 19 MiB back to the system after every PIN check (glibc only).

    glibc raises its mmap threshold after the first large block is freed and from then on keeps such
    blocks in each worker thread's arena: with 8 threads an idle node held ~230 MB after a few logins
    (bench/startup.py). A fixed threshold keeps large blocks in mmap, returned on free (~90 MB).
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, 1024 * 1024)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def main() -> int:
    import os

    from booth import create_app
    from booth.config import serving_threads
    from booth.tls_info import tls_wanted

    return_large_blocks()
    os.environ.setdefault("VINCULO_SERVING", "1")  # no Alembic in the serving process (flask db has it)
    app = create_app()
    import gc
    gc.freeze()  # the app's start-up objects live for the whole process: keep them out of every GC pass
    from booth.backup.periodic import start as start_backups

    start_backups(app)  # every BACKUP_EVERY_MINUTES (booth only); never stops the server
    host, port = app.config["HOST"], int(app.config["PORT"])
    if tls_wanted(app.config["TLS"], host):
        from cheroot import wsgi
        from cheroot.ssl.builtin import BuiltinSSLAdapter

        from booth.tls import ca_summary, ensure_server_cert, interface_addresses

        extra = [n for n in (app.config.get("TLS_NAMES") or "").split(",") if n]
        cert, key = ensure_server_cert(app.instance_path, host, extra)
        app.config["SESSION_COOKIE_SECURE"] = True
        server = wsgi.Server((host, port), app, numthreads=serving_threads(app.config),
                             server_name="vinculo")
        # Every tablet and tray display keeps its connection open between taps. Past cheroot's default of 10
        # waiting keep-alive connections, each answer said "Connection: close" and the next tap paid a new TCP
        # connection and TLS handshake (bench/load.py, 20 tablets). Waiting connections hold no thread.
        server.keep_alive_conn_limit = KEEP_ALIVE_CONNECTIONS
        server.ssl_adapter = BuiltinSSLAdapter(str(cert), str(key))
        print(f"Vínculo {app.config['ROLE']} node on https://{host}:{port}/ (TLS, local CA in {app.instance_path})",
              flush=True)
        print(f"CA fingerprint (SHA-256): {ca_summary(app.instance_path)['fingerprint']}", flush=True)
        if host in ("0.0.0.0", "::"):
            for address in sorted(a for a in interface_addresses() if ":" not in a and not a.startswith("127.")):
                print(f"tablets: https://{address}:{port}/enroll", flush=True)
        try:
            server.start()
        except KeyboardInterrupt:
            server.stop()
        return 0
    from waitress import serve

    print(f"Vínculo {app.config['ROLE']} node on http://{host}:{port}/", flush=True)
    serve(app, host=host, port=port, threads=serving_threads(app.config), ident="vinculo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
