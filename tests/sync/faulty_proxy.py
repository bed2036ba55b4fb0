"""A fault-injecting HTTP proxy on loopback, between booth nodes and central (tests and bench/sync.py).

For each request, with a seeded random draw: drop it (the connection closes, central never sees it),
forward it twice (a duplicate: the node gets the second answer, usually a replay refusal), and drop the
response (central did the work, the node hears nothing). Rates are independent; the counts are kept.
"""
from __future__ import annotations

import http.client
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultyProxy:
    def __init__(self, upstream_port: int, *, seed: int = 1, drop_request: float = 0.2,
                 drop_response: float = 0.2, duplicate: float = 0.1):
        self.upstream_port = upstream_port
        self.rates = (drop_request, drop_response, duplicate)
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts = {"requests": 0, "dropped_requests": 0, "dropped_responses": 0, "duplicated": 0}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy.lock:
                    proxy.counts["requests"] += 1
                    draw_req, draw_resp, draw_dup = proxy.rng.random(), proxy.rng.random(), proxy.rng.random()
                if draw_req < proxy.rates[0]:
                    with proxy.lock:
                        proxy.counts["dropped_requests"] += 1
                    self.close_connection = True
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                status, reply_headers, reply = proxy.forward(self.path, body, headers)
                if draw_dup < proxy.rates[2]:
                    with proxy.lock:
                        proxy.counts["duplicated"] += 1
                    status, reply_headers, reply = proxy.forward(self.path, body, headers)
                if draw_resp < proxy.rates[1]:
                    with proxy.lock:
                        proxy.counts["dropped_responses"] += 1
                    self.close_connection = True
                    return
                self.send_response(status)
                for k, v in reply_headers:
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def forward(self, path: str, body: bytes, headers: dict):
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=120)
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
