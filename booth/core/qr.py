"""QR codes as SVG data URIs (no inline script or style; the CSP allows data: images)."""
from __future__ import annotations

import base64
import io



def svg_bytes(data: str) -> bytes:
    import qrcode  # imported when a QR is drawn, not at start-up
    import qrcode.image.svg

    img = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=4)
    buf = io.BytesIO()
    img.save(buf)
    return buf.getvalue()


def svg_data_uri(data: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg_bytes(data)).decode()
