import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_vendored_htmx_is_the_pinned_release():
    data = (ROOT / "static/vendor/htmx-2.0.11.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
    assert b"2.0.11" in data


def test_templates_use_no_inline_script_or_style():
    for path in (ROOT / "templates").rglob("*.html"):
        html = path.read_text()
        assert "<script>" not in html and "<script >" not in html, path
        assert " style=" not in html and "<style" not in html, path
        assert " hx-" not in html and "hx-on" not in html, path  # data-hx-* only, no hx-on
