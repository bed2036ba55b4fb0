"""Referral slip PDFs: time and size per slip, with the ``qrcode`` and the ``segno`` QR backend.

Run from the repository root with the project's virtualenv (needs poppler-utils and zbar-tools)::

    .venv/bin/python bench/slip.py [--renders 200] [--warmup 20] [--trials 30]

What it does (in memory and a temporary folder; nothing in ``instance/`` is touched):

1. for each backend and each format (80 mm roll, A6), builds ``--renders`` different slips (fresh
   folio and token each, as at a booth), renders ``--warmup`` of them untimed, then times
   ``booth.referrals.slip_pdf.render`` on each: median and p95 in milliseconds of wall-clock time (the
   figures reported) and of the thread's CPU time (less sensitive to other processes on the machine),
   and the PDF's size; also the QR matrix alone, to show where the time goes;
2. checks that each backend's PDF, rendered at 203 dpi (a thermal printer) and downscaled by half,
   decodes with ``zbarimg`` to exactly the slip's URL;
3. reports the QR version and error-correction level chosen, and why: for ``--trials`` slip URLs
   (fixed seed) it draws the symbol at levels M, Q and H in the space the 80 mm slip gives it (whole
   printer dots per module), scuffs it with a white blot over 12, 15 and 20 % of its area (a random
   place each) and reads it at half of 203 dpi, or blurs it and reads it at a third and a quarter of
   203 dpi, and counts how often ``zbarimg`` still decodes it.

Ends with one JSON line (figures for the 80 mm slip, the default format):
``{"qrcode_median_ms", "qrcode_p95_ms", "qrcode_pdf_bytes", "segno_median_ms", "segno_p95_ms",
"segno_pdf_bytes"}``. Goal: < 20 ms per slip.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from booth.referrals import codes, qr, slip_pdf  # noqa: E402
from booth.referrals.slip import SlipData  # noqa: E402

BACKENDS = ("qrcode", "segno")
FORMATS = ("80mm", "a6")
BASE = "https://central.example.org/r/"


def make_slip(language: str = "es") -> SlipData:
    return SlipData(
        folio=codes.display(codes.new_folio()), url=BASE + codes.new_token(b"k" * 32),
        destination="Clínica Familiar Ejemplo 12",
        address="Av. Insurgentes Sur 1234, col. Del Valle, Benito Juárez, 03100 CDMX",
        hours="Lunes a viernes, 8:00–14:00", phone="55 1234 5678",
        what_to_bring="Identificación oficial y esta hoja", valid_until=date(2026, 7, 27),
        issued_on=date(2026, 6, 27), counselor_code="B01", urgent=False, language=language)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def time_renders(backend: str, fmt: str, n: int, warmup: int) -> dict:
    slips = [make_slip() for _ in range(n + warmup)]
    for s in slips[:warmup]:
        slip_pdf.render(s, fmt, qr_backend=backend)
    times, cpu, sizes = [], [], []
    for s in slips[warmup:]:
        c0, t0 = time.thread_time(), time.perf_counter()
        pdf = slip_pdf.render(s, fmt, qr_backend=backend)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
        sizes.append(len(pdf))
    matrix_fn = qr.qr_matrix if backend == "qrcode" else qr.qr_matrix_segno
    qr_times = []
    for s in slips[warmup:]:
        t0 = time.perf_counter()
        matrix_fn(s.url)
        qr_times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": statistics.median(times), "p95_ms": pct(times, 95), "cpu_median_ms": statistics.median(cpu),
            "cpu_p95_ms": pct(cpu, 95), "bytes": int(statistics.median(sizes)),
            "bytes_max": max(sizes), "qr_median_ms": statistics.median(qr_times)}


def zbar(png: Path) -> list[str]:
    out = subprocess.run(["zbarimg", "--raw", "-q", str(png)], capture_output=True, text=True, timeout=60)
    return out.stdout.splitlines()


def decodes_at_half_203(pdf: bytes, url: str, tmp: Path) -> bool:
    from PIL import Image  # Pillow comes with reportlab; the bench and tests use it, the app does not

    path = tmp / "slip.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "203", "-png", "-singlefile", str(path), str(tmp / "slip")], check=True,
                   timeout=60)
    Image.open(tmp / "slip.png").convert("L").reduce(2).save(tmp / "half.png")
    return zbar(tmp / "half.png") == [url]


def ec_comparison(trials: int, tmp: Path) -> list[dict]:
    """Levels M, Q, H, each in the 80 mm slip's QR space (44 mm, whole 203 dpi dots per module), for
    ``trials`` slip URLs (fixed seed, real token length): decode rate under a white scuff over 12, 15
    and 20 % of the symbol, and blurred and read at a third and a quarter of 203 dpi."""
    import base64

    import qrcode
    from PIL import Image, ImageDraw, ImageFilter
    from qrcode import constants

    rng = random.Random(1)
    urls = [BASE + base64.urlsafe_b64encode(rng.randbytes(codes.TOKEN_BYTES + codes.MAC_BYTES)).decode()
            for _ in range(trials)]
    rows = []
    for level in ("M", "Q", "H"):
        counts = {"scuff_12pct": 0, "scuff_15pct": 0, "scuff_20pct": 0, "blur_1_3": 0, "blur_1_4": 0}
        for url in urls:
            code = qrcode.QRCode(error_correction=getattr(constants, f"ERROR_CORRECT_{level}"), border=4)
            code.add_data(url)
            code.make(fit=True)
            matrix = code.get_matrix()
            n = len(matrix)
            dots = int(44 / 25.4 * 72 / (n * slip_pdf.DOT))
            img = Image.new("L", (n * dots, n * dots), 255)
            draw = ImageDraw.Draw(img)
            for r, row in enumerate(matrix):
                for c, dark in enumerate(row):
                    if dark:
                        draw.rectangle([c * dots, r * dots, (c + 1) * dots - 1, (r + 1) * dots - 1], fill=0)
            symbol = (n - 8) * dots
            for share in (0.12, 0.15, 0.20):
                radius = int(math.sqrt(share * symbol * symbol / math.pi))
                im = img.copy()
                w = im.width  # the blot's centre stays off the three finder patterns
                cx, cy = rng.randint(int(w * 0.35), int(w * 0.75)), rng.randint(int(w * 0.35), int(w * 0.75))
                ImageDraw.Draw(im).ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=255)
                im.reduce(2).save(tmp / "ec.png")
                counts[f"scuff_{int(share * 100)}pct"] += zbar(tmp / "ec.png") == [url]
            for div in (3, 4):
                small = img.filter(ImageFilter.GaussianBlur(1.5)).resize((img.width // div,) * 2, Image.BILINEAR)
                small.save(tmp / "ec.png")
                counts[f"blur_1_{div}"] += zbar(tmp / "ec.png") == [url]
        rows.append({"level": level, "version": code.version, "modules": n - 8, "dots_per_module": dots,
                     "symbol_mm": round(symbol / 203 * 25.4, 1), **{k: v / trials for k, v in counts.items()}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--renders", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--trials", type=int, default=30, help="random scuffs per level and size")
    args = ap.parse_args()

    print(f"{datetime.now():%Y-%m-%d %H:%M} · Python {platform.python_version()} · {os.cpu_count()} cores · "
          f"load {os.getloadavg()[0]:.2f}")
    results = {}
    for backend in BACKENDS:
        for fmt in FORMATS:
            r = time_renders(backend, fmt, args.renders, args.warmup)
            results[(backend, fmt)] = r
            print(f"{backend:7} {fmt:5} render median {r['median_ms']:6.2f} ms  p95 {r['p95_ms']:6.2f} ms  "
                  f"(CPU median {r['cpu_median_ms']:5.2f} p95 {r['cpu_p95_ms']:5.2f}; "
                  f"QR matrix alone median {r['qr_median_ms']:5.2f} ms)  PDF {r['bytes']} bytes (max {r['bytes_max']})")

    sample = make_slip()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for backend in BACKENDS:
            for fmt in FORMATS:
                ok = decodes_at_half_203(slip_pdf.render(sample, fmt, qr_backend=backend), sample.url, tmp)
                verdict = "decodes to the URL" if ok else "FAILED"
                print(f"zbarimg, 203 dpi downscaled by half, {backend} {fmt}: {verdict}")
                if not ok:
                    raise SystemExit(f"{backend} {fmt}: the QR did not decode")

        m_qrcode, m_segno = qr.qr_matrix(sample.url), qr.qr_matrix_segno(sample.url)
        print(f"QR: level {qr.ERROR_CORRECTION}, version {qr.version_of(m_qrcode)} with qrcode, "
              f"{qr.version_of(m_segno)} with segno, for a {len(sample.url)}-byte URL "
              f"({'identical' if m_qrcode == m_segno else 'different'} matrices: each library makes its own "
              "segment and mask choices)")
        print(f"Why level {qr.ERROR_CORRECTION}: decode rate in the 80 mm slip's QR space, over {args.trials} "
              "slip URLs (a random white scuff per size, read at half of 203 dpi; or blurred and read at 1/3 "
              "and 1/4 of 203 dpi):")
        for row in ec_comparison(args.trials, tmp):
            print("  {level}: version {version} ({modules}×{modules}), {dots_per_module} dots/module, "
                  "symbol {symbol_mm} mm · scuff 12 % {scuff_12pct:.0%}, 15 % {scuff_15pct:.0%}, "
                  "20 % {scuff_20pct:.0%} · blur 1/3 {blur_1_3:.0%}, 1/4 {blur_1_4:.0%}".format(**row))

    q, s = results[("qrcode", "80mm")], results[("segno", "80mm")]
    print(json.dumps({"qrcode_median_ms": round(q["median_ms"], 2), "qrcode_p95_ms": round(q["p95_ms"], 2),
                      "qrcode_pdf_bytes": q["bytes"], "segno_median_ms": round(s["median_ms"], 2),
                      "segno_p95_ms": round(s["p95_ms"], 2), "segno_pdf_bytes": s["bytes"]}))


if __name__ == "__main__":
    main()
