"""Serve a node the way ``make run`` does.

Loopback → waitress over HTTP. Beyond loopback (``HOST=0.0.0.0`` on the booth's Wi-Fi), or with
``VINCULO_TLS=on`` → cheroot over HTTPS with a certificate from the node's local CA.
"""
from __future__ import annotations

import sys


def main() -> int:
    from booth import create_app
    from booth.tls import ensure_server_cert, tls_wanted

    app = create_app()
    host, port = app.config["HOST"], int(app.config["PORT"])
    if tls_wanted(app.config["TLS"], host):
        from cheroot import wsgi
        from cheroot.ssl.builtin import BuiltinSSLAdapter

        extra = [n for n in (app.config.get("TLS_NAMES") or "").split(",") if n]
        cert, key = ensure_server_cert(app.instance_path, host, extra)
        app.config["SESSION_COOKIE_SECURE"] = True
        server = wsgi.Server((host, port), app, numthreads=int(app.config.get("THREADS", 8)),
                             server_name="vinculo")
        server.ssl_adapter = BuiltinSSLAdapter(str(cert), str(key))
        print(f"Vínculo {app.config['ROLE']} node on https://{host}:{port}/ (TLS, local CA in {app.instance_path})",
              flush=True)
        try:
            server.start()
        except KeyboardInterrupt:
            server.stop()
        return 0
    from waitress import serve

    print(f"Vínculo {app.config['ROLE']} node on http://{host}:{port}/", flush=True)
    serve(app, host=host, port=port, threads=int(app.config.get("THREADS", 8)), ident="vinculo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
