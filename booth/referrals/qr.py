"""The referral slip's QR code as a matrix of modules, for drawing as vector squares in the PDF.

The QR carries ONLY the slip's URL (central base URL + ``/r/<token>``): no folio, reason, result,
age, gender or population.

Error correction: level **Q** (about 25 % of the codewords can be restored).
A slip is printed on thermal paper, folded into a wallet or pocket and scanned days or weeks later
by a clinic's phone or webcam: thermal print fades, creases and rubs off in patches, and a thumb
often covers a corner. Level M (15 %) leaves too little margin for that; level H (30 %) needs two
versions more than M for the same URL, i.e. smaller modules in the same space. For a typical URL
(``https://central.example.org/r/`` + a 32-character token = 62 bytes) Q costs one version over M
(version 5, 37×37 modules, instead of version 4, 33×33): with a 0.75–0.88 mm module
(6–7 dots of a 203 dpi thermal printer) the symbol with its quiet zone is 34–39 mm wide and still
decodes with ``zbarimg`` from a 203 dpi render downscaled by half (3–3.5 pixels per module).
The version is chosen automatically (the smallest that holds the URL at level Q); longer base URLs
simply give a larger version.

Both functions return the same thing: rows of booleans, ``True`` = dark module, *including* the
4-module quiet zone (light border) that the QR standard requires around the symbol.
"""
from __future__ import annotations

ERROR_CORRECTION = "Q"
QUIET_ZONE = 4  # modules


def qr_matrix(data: str) -> list[list[bool]]:
    """The QR matrix of ``data`` made with the ``qrcode`` package (level Q, automatic version)."""
    import qrcode  # imported when a slip is drawn, not at start-up
    from qrcode.constants import ERROR_CORRECT_Q

    qr = qrcode.QRCode(version=None, error_correction=ERROR_CORRECT_Q, border=QUIET_ZONE)
    qr.add_data(data)
    qr.make(fit=True)
    return [[bool(m) for m in row] for row in qr.get_matrix()]


def qr_matrix_segno(data: str) -> list[list[bool]]:
    """The same with ``segno`` (bench comparison only; segno is a test/bench dependency).
    ``boost_error=False`` keeps level Q instead of raising it when the version has room to spare,
    so both backends choose the error correction the same way."""
    import segno

    qr = segno.make(data, error=ERROR_CORRECTION.lower(), micro=False, boost_error=False)
    return [[bool(m) for m in row] for row in qr.matrix_iter(scale=1, border=QUIET_ZONE)]


def version_of(matrix: list[list[bool]]) -> int:
    """The QR version of a matrix returned above (side = 17 + 4·version + 2·quiet zone)."""
    return (len(matrix) - 2 * QUIET_ZONE - 17) // 4
