"""Every change to a synced row makes its version grow, whoever wrote the code that changed it.

Central tells a newer copy from a conflicting one by the version alone, so a row changed without a new
version would look like a conflict (or, worse, be skipped). Services still bump versions where they mean
to (a correction, a status); this hook catches every other change of a travelling column at flush time.
Rows mapped with SQLAlchemy's ``version_id_col`` (visits, screenings) are left to SQLAlchemy. Columns
that never travel (a staff member's failed PIN attempts, lock time) do not bump anything.
"""
from __future__ import annotations

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from booth.sync import records as R

_TRAVELLING: dict[str, frozenset | None] = {k.table: (frozenset(k.columns) if k.columns else None)
                                            for k in R.KINDS + R.PULL_KINDS}


@event.listens_for(Session, "before_flush")
def bump_versions(session, flush_context, instances):
    for obj in session.dirty:
        state = inspect(obj)
        mapper = state.mapper
        table = getattr(mapper.local_table, "name", None)
        if table not in _TRAVELLING or mapper.version_id_col is not None or "version" not in mapper.columns:
            continue
        changed = set()
        for prop in mapper.column_attrs:
            if state.attrs[prop.key].history.has_changes():
                changed.add(prop.columns[0].name)
        if not changed or "version" in changed:
            continue
        only = _TRAVELLING[table]
        if only is not None and not (changed & only):
            continue
        obj.version = (obj.version or 0) + 1
