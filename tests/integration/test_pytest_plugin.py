"""The pytest plugin (entry point pytest11) in a user's own test suite, run by pytester: a test that converts
passes, one whose conversion cannot meet its tolerance fails with the cell table, the marker's keywords are
defaults, and JUnit XML carries each cell's properties. Real torch export, ONNX Runtime and LiteRT."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.framework, pytest.mark.slow]

USER_TESTS = '''
import pytest
import torch

torch.manual_seed(0)
NET = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
X = torch.randn(4, 8)
FAST = dict(samples=2, bench_seconds=0.0, bench_iters=3)


def test_converts_to_onnx(convcheck):
    result = convcheck.assert_converts(NET, (X,), routes=["torch/onnx/ort"], precision="fp32", **FAST)
    assert [c["status"] for c in result.cells] == ["pass"]


@pytest.mark.convcheck(routes=["torch/tflite"], precision="int8", atol=1e-7, rtol=1e-7)
def test_int8_cannot_meet_1e7(convcheck):
    convcheck.assert_converts(NET, (X,), **FAST)


def test_check_does_not_assert(convcheck):
    result = convcheck.check(NET, (X,), routes=["torch/tflite"], precision="int8", atol=1e-7, rtol=1e-7, **FAST)
    assert result.failures() and result.failures()[0]["status"] == "mismatch"
'''


def test_the_plugin_passes_and_fails_as_it_should(pytester):
    pytester.makepyfile(test_user_model=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--junitxml=junit.xml", "-q", timeout=900)
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    # the failing test's message is the cell table, not a traceback into convcheck
    assert "1 of 1 convcheck cells failed" in out and "torch/tflite" in out and "mismatch" in out
    assert "convcheck/pytest_plugin.py" not in out
    tree = ET.parse(pytester.path / "junit.xml")
    props = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
             for case in tree.iter("testcase")}
    assert props["test_converts_to_onnx"]["convcheck.torch/onnx/ort[cpu fp32].status"] == "pass"
    assert float(props["test_converts_to_onnx"]["convcheck.torch/onnx/ort[cpu fp32].p50_ms"]) > 0
    assert props["test_int8_cannot_meet_1e7"]["convcheck.torch/tflite[cpu int8].status"] == "mismatch"


def test_the_marker_takes_keywords_only(pytester):
    pytester.makepyfile(test_bad='''
import pytest

@pytest.mark.convcheck("torch/onnx/ort")
def test_x(convcheck):
    pass
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=300)
    assert result.ret != 0
    assert "takes keywords only" in result.stdout.str() + result.stderr.str()
