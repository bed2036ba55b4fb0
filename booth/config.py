"""Configuration defaults.

Order of precedence (last wins): these defaults → ``instance/config.py`` → environment
variables ``VINCULO_*`` (plus ``DATABASE_URL``, ``HOST`` and ``PORT``) → ``test_config``.
``VINCULO_INSTANCE_DIR`` moves the instance folder itself (tests, benches, several nodes on one machine).
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"


class Defaults:
    # "booth" (offline node on SQLite) or "central" (PostgreSQL, merges every booth)
    ROLE = "booth"
    SQLALCHEMY_DATABASE_URI = None  # filled from DATABASE_URL or instance/vinculo.sqlite3
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    HOST = "127.0.0.1"
    PORT = 5000
    # Worker threads of the server (``serving_threads``): unset → 8 on a booth, CENTRAL_THREADS at central,
    # where every booth's push holds a thread while central merges it: with 8, twenty booths pushing at once
    # left the coordinators' dashboard waiting for a free thread (bench/central_load.py: p95 3 s, not 0.1 s)
    THREADS = None
    CENTRAL_THREADS = 32
    # "auto": TLS when listening beyond loopback; "on": always; "off": never
    TLS = "auto"
    # Public base URL of this node (enrollment QR codes); derived from the request when unset
    BASE_URL = None

    # Sessions on shared tablets
    IDLE_LOCK_MINUTES = 5
    SESSION_ABSOLUTE_HOURS = 10
    CENTRAL_IDLE_MINUTES = 30
    DEVICE_COOKIE_DAYS = 400

    # PIN / password hashing: argon2id, m ≥ 19 MiB, t ≥ 2 (OWASP minimum)
    ARGON2_TIME_COST = 2
    ARGON2_MEMORY_COST_KIB = 19 * 1024
    ARGON2_PARALLELISM = 1

    LOCKOUT_THRESHOLD = 5
    LOCKOUT_MINUTES = 15
    LOGIN_RATE_LIMIT = "30 per minute"
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_HEADERS_ENABLED = True

    ENROLLMENT_CODE_MINUTES = 10
    # Sync: enrollment attempts per client address (central); the code itself is valid 30 minutes
    SYNC_ENROLL_RATE_LIMIT = "10 per minute"
    # Sync HTTP timeout of a booth's requests to central (seconds)
    SYNC_TIMEOUT_S = 30
    CLOCK_SKEW_WARN_SECONDS = 120

    # Encrypted backups (booth/backup): where they go (a USB stick; default instance/backups), how often
    # the serving process makes one (minutes; 0 = never), and central's X25519 public key (base64), which
    # can then read them as well as the event's recovery key
    BACKUP_DIR = None
    BACKUP_EVERY_MINUTES = 10
    BACKUP_CENTRAL_PUBLIC_KEY = None

    WTF_CSRF_TIME_LIMIT = None  # tied to the session cookie, not a wall-clock limit
    WTF_CSRF_HEADERS = ["X-CSRFToken"]
    # Flask-WTF's "SSL strict" mode refuses an HTTPS POST without a same-origin Referer, but our
    # Referrer-Policy: no-referrer makes browsers send none: every HTTPS form would fail. The token
    # and the SameSite=Strict cookies are the protection.
    WTF_CSRF_SSL_STRICT = False
    SESSION_COOKIE_NAME = "vinculo_flask"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Strict"
    MAX_CONTENT_LENGTH = 2 * 1024 * 1024

    BABEL_DEFAULT_LOCALE = "es"
    BABEL_DEFAULT_TIMEZONE = "UTC"
    LANGUAGES = ("es", "en")

    # exports and shared views: non-zero counts below this are "<10" (docs/ARCHITECTURE.md, small-cell suppression)
    REPORT_SUPPRESSION_THRESHOLD = 10
    # the DHIS2 export's mapping of indicators to data element / category option combo ids (a JSON file); unset:
    # the example with placeholder ids (booth/reports/exports/dhis2_mapping.example.json says how to write one)
    REPORT_DHIS2_MAPPING = None
    # central: the consent texts booths pull as the starting point of their clinical settings
    # ({"es": …, "en": …}; unset: the built-in texts)
    CONSENT_TEXTS = None


_INT_KEYS = {"PORT", "IDLE_LOCK_MINUTES", "SESSION_ABSOLUTE_HOURS", "CENTRAL_IDLE_MINUTES",
             "ARGON2_TIME_COST", "ARGON2_MEMORY_COST_KIB", "LOCKOUT_THRESHOLD", "LOCKOUT_MINUTES",
             "ENROLLMENT_CODE_MINUTES", "SYNC_TIMEOUT_S", "BACKUP_EVERY_MINUTES", "REPORT_SUPPRESSION_THRESHOLD",
             "THREADS", "CENTRAL_THREADS"}


def instance_folder(environ=os.environ) -> Path:
    """``instance/`` beside the code, or ``VINCULO_INSTANCE_DIR``."""
    return Path(environ.get("VINCULO_INSTANCE_DIR") or INSTANCE)


def environment_overrides(environ=os.environ) -> dict:
    out: dict = {}
    for key, value in environ.items():
        if key.startswith("VINCULO_") and key != "VINCULO_INSTANCE_DIR":
            name = key[len("VINCULO_"):]
            out[name] = int(value) if name in _INT_KEYS else value
    if environ.get("DATABASE_URL"):
        out["SQLALCHEMY_DATABASE_URI"] = environ["DATABASE_URL"]
    if environ.get("HOST"):
        out["HOST"] = environ["HOST"]
    if environ.get("PORT"):
        out["PORT"] = int(environ["PORT"])
    return out


def serving_threads(config) -> int:
    """How many requests the server works on at once (waitress/cheroot threads), and so how many database
    connections one serving process may hold at the same time."""
    if config.get("THREADS"):
        return int(config["THREADS"])
    return int(config.get("CENTRAL_THREADS") or 32) if config.get("ROLE") == "central" else 8
