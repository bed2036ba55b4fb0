"""How many requests a server works on at once: central needs more threads than a booth (every booth's push
holds one while central merges it; bench/central_load.py), and a database connection for each of them."""
from __future__ import annotations

from booth.config import environment_overrides, serving_threads


def test_booth_8_central_32_and_a_setting_wins():
    assert serving_threads({"ROLE": "booth", "THREADS": None, "CENTRAL_THREADS": 32}) == 8
    assert serving_threads({"ROLE": "central", "THREADS": None, "CENTRAL_THREADS": 32}) == 32
    assert serving_threads({"ROLE": "central", "THREADS": None, "CENTRAL_THREADS": 48}) == 48
    assert serving_threads({"ROLE": "central", "THREADS": 12, "CENTRAL_THREADS": 32}) == 12
    assert environment_overrides({"VINCULO_THREADS": "16", "VINCULO_CENTRAL_THREADS": "40"}) == \
        {"THREADS": 16, "CENTRAL_THREADS": 40}


def test_central_keeps_a_database_connection_for_every_thread(pg_app):
    from booth.extensions import db

    with pg_app.app_context():
        assert serving_threads(pg_app.config) == 32
        assert db.engine.pool.size() == 32


def test_a_booth_on_sqlite_keeps_its_pool(app):
    from booth.extensions import db

    assert "SQLALCHEMY_ENGINE_OPTIONS" not in app.config or "pool_size" not in app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert serving_threads(app.config) == 8
    with app.app_context():
        assert db.engine.dialect.name == "sqlite"
