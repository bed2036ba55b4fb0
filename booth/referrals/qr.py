"""The referral slip's QR code as a matrix of modules, for drawing as vector squares in the PDF.

The QR carries ONLY the slip's URL (central base URL + ``/r/<token>``): no folio, reason, result,
age, gender or population.

Error correction: level **Q** (about 25 % of the codewords can be restored), version automatic.
A slip is printed on thermal paper, folded into a wallet or pocket and scanned days or weeks later
by a clinic's phone or webcam: thermal print fades, creases and rubs off in patches, and a thumb
often covers part of it. For the typical URL (``https://central.example.org/r/`` + a 32-character
token = 62 bytes) the levels give: L and M version 4 (33×33 modules), Q version 6 (41×41),
H version 7 (45×45). In the ~43 mm the 80 mm slip gives the QR (quiet zone included), with whole
printer dots per module (M 8, Q 7, H 6), over 60 slip URLs, ``zbarimg`` decodes (``bench/slip.py``
repeats this):

- with a white scuff over 12 % of the symbol, read at 203 dpi downscaled by half: M 15 %, Q and H 100 %;
  over 15 %: M 0 %, Q and H 100 %; over 20 %: M 0 %, Q 17 %, H 83 %;
- blurred and read at a third of 203 dpi: all 100 %; at a quarter (1.75 px per module for Q):
  M 100 %, Q 72 %, H 0 %.

Q survives the scuffs a carried slip gets and keeps modules large enough for a poor camera; M
(15 %) fails as soon as a small patch is rubbed off, and H's smaller modules fail first when the
camera is far or out of focus. Longer base URLs simply get a larger version. On the slip each module
is a whole number of dots of a 203 dpi thermal printer (7 dots = 0.88 mm for version 6), so it
prints crisp; at half that resolution a module is still 3.5 pixels.

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
