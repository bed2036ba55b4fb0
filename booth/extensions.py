"""Flask extensions, created here and init_app'd in the factory."""
from flask import g, request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from booth.db import Base

db = SQLAlchemy(model_class=Base)
csrf = CSRFProtect()
babel = Babel()


def limit_key() -> str:
    """Booth: per enrolled device. Central: per client address (used for the limit only, never stored)."""
    from flask import current_app

    if current_app.config["ROLE"] == "booth":
        device = getattr(g, "device", None)
        if device is None:
            from booth.auth.access import DEVICE_COOKIE
            from booth.auth.services import device_by_token

            device = device_by_token(db.session, request.cookies.get(DEVICE_COOKIE))
        if device is not None and device.active:
            return f"device:{device.id}"
    return f"addr:{request.remote_addr or '-'}"


limiter = Limiter(key_func=limit_key, default_limits=[])
