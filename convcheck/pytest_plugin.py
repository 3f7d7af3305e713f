"""convcheck's pytest plugin (entry point `pytest11`, loaded wherever convcheck is installed): assert in your own
test suite that a model still converts along the routes you deploy, within tolerance.

    def test_exports(convcheck):
        convcheck.assert_converts(MyNet(), (torch.randn(1, 3, 224, 224),), routes=["torch/onnx/ort"])

    @pytest.mark.convcheck(routes=["torch/onnx/ort", "torch/openvino"], precision="fp32")
    def test_exports_with_marker_defaults(convcheck):
        convcheck.assert_converts(MyNet(), (x,))

`assert_converts` runs `convcheck.check` (real conversions, real runtimes) into the test's tmp_path and fails
the test with the cell table when a cell's status fails the run; `check` returns the Results without
asserting. Each cell is recorded as JUnit properties (`convcheck.<route>[<device> <precision>].status`, its
max_abs, p50_ms), so `pytest --junitxml` carries them. The marker's keywords are defaults for every call in
the test (a call's own keywords win).

Importing this module imports no ML framework and nothing of convcheck's engine: it is loaded into every
pytest session of an environment that has convcheck.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

MARKER = "convcheck"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(**options): defaults for the `convcheck` fixture's calls in this "
                            "test (routes=, precision=, device=, samples=, atol=, rtol=, fail_on=, ...)")


class ConvcheckFixture:
    """What the `convcheck` fixture gives a test: `check(...)` and `assert_converts(...)`."""

    def __init__(self, folder: Path, defaults: dict[str, Any], record: Callable[[str, Any], None]) -> None:
        self.folder = folder
        self.defaults = defaults
        self._record = record
        self.results: list[Any] = []  # every Results this test produced, in order

    def check(self, model: Any, example_inputs: Any = None, **options: Any) -> Any:
        """convcheck.check(model, example_inputs, ...) with the marker's defaults, into this test's tmp_path;
        the Results, without asserting anything."""
        import convcheck

        given = {**self.defaults, **options}
        given.setdefault("out", self.folder / f"run{len(self.results)}")
        result = convcheck.check(model, example_inputs, **given)
        self.results.append(result)
        for row in result.rows():
            key = f"convcheck.{row['route']}[{row['device']} {row['precision']}]"
            self._record(f"{key}.status", row["status"])
            for column in ("max_abs", "snr_db", "p50_ms"):
                if row[column] is not None:
                    self._record(f"{key}.{column}", f"{row[column]:.6g}")
        return result

    def assert_converts(self, model: Any, example_inputs: Any = None, **options: Any) -> Any:
        """check(...), then fail the test (with the table of failing cells) when a cell's status fails the run
        (a mismatch, a conversion error, a crash...; `fail_on=` changes which). Routes that cannot run on this
        machine (missing_dep, no_device) do not fail it unless `fail_on` names them."""
        result = self.check(model, example_inputs, **options)
        if not result.cells:
            pytest.fail(f"convcheck planned no cell for {type(model).__name__}: no route of those asked for starts "
                        "from its format", pytrace=False)
        failed = result.failures()
        if failed:
            from convcheck.api.results import summary_line, text_table

            pytest.fail(f"{len(failed)} of {len(result.cells)} convcheck cells failed (run {result.run_id}, report "
                        f"{result.out_dir / 'matrix.html'}):\n{text_table(failed)}\nall: {summary_line(result.cells)}",
                        pytrace=False)
        return result


@pytest.fixture
def convcheck(request: pytest.FixtureRequest, tmp_path: Path, record_property: Callable[[str, Any], None]
              ) -> ConvcheckFixture:
    """Check a model along routes from a test: `convcheck.assert_converts(model, example_inputs, routes=[...])`."""
    defaults: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(MARKER))):  # the closest marker wins
        if marker.args:
            raise pytest.UsageError(f"@pytest.mark.{MARKER} takes keywords only (routes=..., precision=...), "
                                    f"not {marker.args!r}")
        defaults.update(marker.kwargs)
    return ConvcheckFixture(tmp_path / "convcheck", defaults, record_property)
