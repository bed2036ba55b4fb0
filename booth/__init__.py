"""Vínculo: a tracker for HIV and hepatitis C rapid-testing booths.

``create_app(test_config=None)``: config → extensions → blueprints → CLI → errors → hooks.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask

from booth.clock import SystemClock
from booth.config import ROOT, Defaults, environment_overrides, instance_folder, serving_threads

__version__ = "0.1.0"


def create_app(test_config: dict | None = None) -> Flask:
    test_config = dict(test_config or {})
    instance_dir = Path(test_config.pop("INSTANCE_DIR", None) or instance_folder())
    app = Flask(__name__, instance_path=str(instance_dir), template_folder=str(ROOT / "templates"),
                static_folder=str(ROOT / "static"))
    configure(app, test_config)
    register_extensions(app)
    register_blueprints(app)
    register_cli(app)
    register_errors(app)
    register_hooks(app)
    check_database(app)
    return app


def configure(app: Flask, test_config: dict) -> None:
    app.config.from_object(Defaults)
    app.config.from_pyfile("config.py", silent=True)
    app.config.update(environment_overrides())
    app.config.update(test_config)
    if app.config["ROLE"] not in ("booth", "central"):
        raise RuntimeError(f"VINCULO_ROLE must be 'booth' or 'central', not {app.config['ROLE']!r}")
    if not app.config.get("SECRET_KEY"):
        # imported here: `python -m booth.instance` must not find itself already imported by the package
        from booth.instance import read_secret

        app.config["SECRET_KEY"] = read_secret(Path(app.instance_path))
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        if app.config["ROLE"] == "central":
            raise RuntimeError("The central server needs DATABASE_URL=postgresql+psycopg://… (PostgreSQL).")
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{Path(app.instance_path) / 'vinculo.sqlite3'}"
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # a connection for every serving thread: the default pool (5 + 10) would make requests wait for one
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS",
                              {"pool_size": serving_threads(app.config), "max_overflow": 10})
    app.config.setdefault("CLOCK", SystemClock())
    # SQL parameters and rows must never reach a log line: keep SQLAlchemy's engine logger quiet.
    import logging
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    app.config.setdefault("VERSION", __version__)


def register_extensions(app: Flask) -> None:
    from booth.extensions import babel, csrf, db, limiter
    from booth.i18n import select_locale, select_timezone

    db.init_app(app)
    if not app.config.get("SERVING"):
        # Flask-Migrate (and Alembic, ~10 MB) only where `flask db` or tests need it, not in the
        # serving process.
        from flask_migrate import Migrate

        Migrate(render_as_batch=True, compare_type=True).init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone,
                   default_translation_directories=str(ROOT / "booth" / "translations"))
    limiter.init_app(app)
    # import models so that metadata knows every table (migrations, create_all in tools)
    import booth.models  # noqa: F401


def register_blueprints(app: Flask) -> None:
    from booth.auth.views import bp as auth_bp
    from booth.central.views import bp as central_bp
    from booth.core.views import bp as core_bp
    from booth.events.views import bp as setup_bp

    from booth.referrals.clinic_views import bp as clinic_bp

    app.register_blueprint(core_bp)
    app.register_blueprint(clinic_bp)   # the clinic side and the QR's neutral page: booth and central
    if app.config["ROLE"] == "booth":
        from booth.counseling.views import bp as counseling_bp
        from booth.screening.views import bp as screening_bp
        from booth.settings.views import bp as settings_bp
        from booth.stock.views import bp as stock_bp
        from booth.visits.day_views import bp as day_bp
        from booth.referrals.views import bp as referrals_bp
        from booth.reports.views import bp as reports_bp
        from booth.sync.screens import bp as sync_bp
        from booth.visits.views import bp as visits_bp

        app.register_blueprint(setup_bp)
        app.register_blueprint(auth_bp)
        for bp in (visits_bp, screening_bp, counseling_bp, settings_bp, stock_bp, day_bp, referrals_bp, reports_bp,
                   sync_bp):
            app.register_blueprint(bp)
    else:
        from booth.reports.central_exports import bp as central_exports_bp
        from booth.reports.central_views import bp as central_reports_bp
        from booth.sync.screens import central_bp as sync_admin_bp
        from booth.sync.views import bp as sync_api_bp

        app.register_blueprint(central_bp)
        app.register_blueprint(sync_api_bp)
        app.register_blueprint(sync_admin_bp)
        app.register_blueprint(central_reports_bp)
        app.register_blueprint(central_exports_bp)


def register_cli(app: Flask) -> None:
    from booth.cli import register

    register(app)


def register_errors(app: Flask) -> None:
    from booth.core.errors import register as register_error_handlers

    register_error_handlers(app)


def register_hooks(app: Flask) -> None:
    from booth.auth.access import guard
    from booth.auth.cookies import SessionInterface
    from booth.core.headers import apply_security_headers, start_timer
    from booth.core.templating import register_template_helpers

    app.session_interface = SessionInterface()
    app.before_request(start_timer)
    app.before_request(guard)
    app.after_request(apply_security_headers)
    register_template_helpers(app)


def check_database(app: Flask) -> None:
    """A damaged SQLite file never starts half-working."""
    from booth.db import check_integrity
    from booth.extensions import db

    with app.app_context():
        uri = app.config["SQLALCHEMY_DATABASE_URI"]
        if uri.startswith("sqlite:///"):
            path = Path(uri[len("sqlite:///"):])
            if not path.exists():
                return
            # Readable by its owner only (SQLite gives its -wal and -shm files the same mode).
            for f in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                if f.exists() and f.stat().st_mode & 0o077:
                    f.chmod(0o600)
        check_integrity(db.engine)
