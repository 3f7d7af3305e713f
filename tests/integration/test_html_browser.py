"""The HTML reports in a real headless browser: Playwright driving Debian's chromium.

The pages are opened from disk (file://), as a reader opens a report: no console error, no page
error, nothing a hostile model name or output name carries is run, the table and charts render and
respond (sort, filter, cell detail), and a screenshot is not blank. Without a chromium binary the
test skips, except under CI (the env var CI set), where the test set-up must have installed it."""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from convcheck.reports.html import model_page_name, write_html_reports

pytest.importorskip("playwright", reason="playwright is not installed (pip install playwright)")

EVIL_MODEL = "<script>window.__pwned=1</script>evil"
EVIL_OUTPUT = "<img src=x onerror=window.__pwned=2>"


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    reason = "no chromium binary on PATH (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must install it")
    pytest.skip(reason)


def _parity(ok: bool, max_abs: float, output: str = "logits") -> dict:
    stats = {"max_abs": max_abs, "max_rel": max_abs * 5, "mean_abs": max_abs / 4, "rms": max_abs / 3,
             "cosine": 0.9999, "snr_db": 60.0}
    return {"ok": ok, "tolerance": {"atol": 1e-4, "rtol": 1e-3, "check": "elementwise", "profile": "fp32"},
            "samples": 4, "worst_sample": 0, **stats,
            "per_output": {output: {"shape": [1, 10], "dtype": "float32", "ok": ok, **stats}}}


def _latency(p50: float) -> dict:
    return {"p50": p50, "p90": p50 * 1.2, "p99": p50 * 1.5, "mean": p50, "stdev": p50 / 20, "n": 100, "batch": 1}


def _stages(hops: list[str], compare_ok: bool = True) -> list[dict]:
    names = ["reference", *(f"convert:{h}" for h in hops), "load", "run", "compare", "benchmark"]
    return [{"stage": n, "ok": compare_ok or n != "compare", "seconds": 0.01} for n in names]


def _cell(model: str, route: str, steps: list[str], status: str, **extra) -> dict:
    return {"model": model, "route": route, "source": "torch", "steps": steps, "runtime": route.split("/")[-1],
            "device": "cpu", "precision": "fp32", "status": status, "error": None, "artifacts": [], "stages": [],
            **extra}


def build_document() -> dict:
    cells = [
        _cell("resnet", "torch/onnx/ort", ["onnx"], "pass", parity=_parity(True, 3e-6), latency_ms=_latency(20.0),
              stages=_stages(["onnx"]), artifact_bytes=100_000_000,
              memory_mb={"rss_after_load": 500.0, "process_peak_rss": 700.0}),
        _cell("resnet", "torch/onnx/openvino", ["onnx", "openvino"], "mismatch", parity=_parity(False, 0.3),
              latency_ms=_latency(12.0), stages=_stages(["onnx", "openvino"], compare_ok=False),
              error={"kind": "mismatch", "message": "logits: max_abs 0.3 exceeds atol; error starts at Conv /c1",
                     "stage": "compare", "op": None},
              localization={"found": True, "node": "/c1/Conv", "op_type": "Conv", "max_abs_in": 0.0,
                            "max_abs_out": 0.3, "summary": "error starts at Conv /c1/Conv"}),
        _cell("resnet", "torch/tflite", ["tflite"], "missing_dep",
              error={"kind": "missing_dep", "message": "litert-torch not installed; pip install 'convcheck[litert-torch]'",
                     "stage": "plan", "op": None}),
        _cell(EVIL_MODEL, "torch/onnx/ort", ["onnx"], "pass", parity=_parity(True, 1e-7, EVIL_OUTPUT),
              latency_ms=_latency(0.5), stages=_stages(["onnx"])),
        _cell(EVIL_MODEL, "torch/onnx/openvino", ["onnx", "openvino"], "convert_error",
              stages=[{"stage": "convert:onnx", "ok": True, "seconds": 0.1},
                      {"stage": "convert:openvino", "ok": False, "seconds": 0.1}],
              error={"kind": "convert_error", "message": f"</script><script>window.__pwned=3</script> in {EVIL_OUTPUT}",
                     "stage": "convert:openvino", "op": EVIL_OUTPUT}),
    ]
    return {"schema_version": 1, "cells": cells,
            "run": {"id": "20261125-120000-beef", "started": "2026-11-25T12:00:00+00:00", "finished": None,
                    "host": {"hostname": "ci", "cpu": "cpu", "cores": 2, "gpus": []},
                    "packages": {"numpy": "2.4.6", "onnxruntime": "1.32.0"}}}


def png_pixels(png: bytes) -> tuple[int, int, int, bytes]:
    """Width, height, bytes per pixel and the unfiltered pixel bytes of an 8-bit RGB(A) PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        chunk = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    out, prev = bytearray(), bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += line
        prev = line
    return width, height, bpp, bytes(out)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("html")
    write_html_reports(build_document(), out)
    return out


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


def _open(browser, url: str, **context):
    page = browser.new_context(viewport={"width": 1280, "height": 900}, **context).new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.goto(url)
    page.wait_for_load_state("load")
    return page, problems


def _visible_rows(page) -> list[str]:
    return page.eval_on_selector_all(
        "#matrix tbody tr", "rows => rows.filter(r => r.offsetParent !== null).map(r => r.dataset.label)")


def test_matrix_page_in_chromium(browser, site):
    page, problems = _open(browser, (site / "matrix.html").as_uri())
    assert page.evaluate("typeof window.__pwned") == "undefined"
    header = page.inner_text("#matrix thead")
    assert EVIL_MODEL in header  # shown as text
    assert page.locator("#matrix tbody tr").count() == 3
    assert _visible_rows(page) == ["torch/onnx/ort", "torch/onnx/openvino", "torch/tflite"]
    assert page.locator("#matrix td.cell").count() == 5

    charts = page.locator("svg.chart")
    assert charts.count() >= 3  # a latency panel per model that ran, and the parity chart
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box and box["width"] > 50 and box["height"] > 20
    assert page.locator("svg.chart circle, svg.chart path").count() == 3  # a parity mark per cell that ran

    # Sorting: the route header toggles ascending/descending order.
    page.click("#matrix thead th:nth-child(1) button.sort")
    ascending = _visible_rows(page)
    assert ascending == sorted(ascending)
    page.click("#matrix thead th:nth-child(1) button.sort")
    assert _visible_rows(page) == sorted(ascending, reverse=True)
    # Sorting by a model column puts its passes (by p50) first.
    page.click("#matrix thead th:nth-child(4) button.sort")
    assert _visible_rows(page)[0] == "torch/onnx/ort"

    # Filtering by text keeps matching routes; by status keeps rows holding such a cell.
    page.fill("#filter", "openvino")
    assert _visible_rows(page) == ["torch/onnx/openvino"]
    page.fill("#filter", "evil")  # a model name: its column stays, every row stays
    assert len(_visible_rows(page)) == 3
    assert page.locator("#matrix thead th", has_text="resnet").is_hidden()
    page.fill("#filter", "")
    page.select_option("#status-filter", "failure")
    assert _visible_rows(page) == ["torch/onnx/openvino"]
    page.select_option("#status-filter", "all")
    assert len(_visible_rows(page)) == 3

    # Clicking a cell opens its detail; Escape closes it.
    assert page.locator("#detail").is_hidden()
    page.click('#matrix td.cell[data-status="mismatch"] a')
    detail = page.locator("#detail")
    assert detail.is_visible()
    text = detail.inner_text()
    assert "resnet × torch/onnx/openvino" in text and "error starts at Conv /c1/Conv" in text and "0.3" in text
    page.click('#matrix td.cell[data-status="convert_error"] a')
    assert "window.__pwned=3" in detail.inner_text()  # the hostile message is text in the drawer
    page.keyboard.press("Escape")
    assert detail.is_hidden()

    shot = page.screenshot(clip={"x": 0, "y": 0, "width": 640, "height": 400})
    width, height, bpp, pixels = png_pixels(shot)
    colours = {pixels[i:i + 3] for i in range(0, len(pixels), bpp * 7)}
    assert (width, height) == (640, 400) and len(colours) > 20, "the screenshot is blank"
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert problems == []


def test_model_pages_in_chromium(browser, site):
    evil = site / "models" / model_page_name(EVIL_MODEL)
    page, problems = _open(browser, evil.as_uri())
    body = page.inner_text("body")
    assert EVIL_MODEL in body and EVIL_OUTPUT in body
    assert page.locator("img").count() == 0
    assert page.locator("ol.ladder").count() == 2
    assert page.evaluate("typeof window.__pwned") == "undefined"

    page.goto((site / "models" / model_page_name("resnet")).as_uri())
    body = page.inner_text("body")
    assert "error starts at Conv /c1/Conv" in body and "Stopped at compare" in body
    assert page.locator("svg.chart").bounding_box()["width"] > 50
    shot = page.screenshot()
    _, _, bpp, pixels = png_pixels(shot)
    assert len({pixels[i:i + 3] for i in range(0, len(pixels), bpp * 97)}) > 10
    assert problems == []


def test_matrix_without_javascript(browser, site):
    """The table is static HTML: every row, cell and chart is there without the script."""
    page, problems = _open(browser, (site / "matrix.html").as_uri(), java_script_enabled=False)
    assert len(_visible_rows(page)) == 3
    assert page.locator("#matrix td.cell").count() == 5
    assert page.locator("svg.chart").count() >= 3
    href = page.get_attribute('#matrix td.cell[data-status="mismatch"] a', "href")
    assert href.startswith("models/resnet.html#")
    page.click('#matrix td.cell[data-status="mismatch"] a')
    page.wait_for_load_state("load")
    assert page.url.endswith(href) and "Stopped at compare" in page.inner_text("body")
    assert problems == []
