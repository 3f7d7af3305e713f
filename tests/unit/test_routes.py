"""Route enumeration: routes come out of the converter and runtime graph, not a hand-written list."""

from __future__ import annotations

import pytest

from convcheck.converter import Converter
from convcheck.errors import ConvcheckError
from convcheck.registry import converters, runtimes
from convcheck.routes import availability, enumerate_routes, route_id, select_routes
from convcheck.types import Format, Requirement, Status
from convcheck.runtime import Runtime


def test_builtin_routes():
    ids = [r.id for r in enumerate_routes()]
    assert "torch/onnx/ort" in ids
    assert "torch/onnx_legacy/ort" in ids  # a variant of a hop gets its own id
    assert "torch/torch" not in ids  # the reference runtime on its own source is not a route
    route = next(r for r in enumerate_routes() if r.id == "torch/onnx/ort")
    assert route.converters == ("onnx_from_torch",)
    assert route.hops == ("onnx",)
    assert route.formats == (Format.TORCH, Format.ONNX)
    assert all(" " not in i and "/" in i for i in ids)  # typed in a shell unquoted


def test_route_id_collapses_runtime_named_like_last_hop():
    assert route_id(Format.TORCH, ("onnx",), "ort") == "torch/onnx/ort"
    assert route_id(Format.TORCH, ("openvino",), "openvino") == "torch/openvino"
    assert route_id(Format.ONNX, (), "ort") == "onnx/ort"


class _NcnnFromOnnx(Converter):
    """A hop to a format nothing else produces (SAVEDMODEL stands in for it), needing a missing package."""

    hop = "ncnn"
    source = Format.ONNX
    target = Format.SAVEDMODEL
    requires = (Requirement("convcheck_no_such_module", "ncnn", "ncnn"),)


class _NcnnRuntime(Runtime):
    name = "ncnn"
    format = Format.SAVEDMODEL
    devices = ("cpu", "cuda")


class _CudaOnlyOrt(Runtime):
    name = "ort_cuda_only"
    format = Format.ONNX
    devices = ("cuda",)


@pytest.fixture
def extra_hops(fresh_routes):
    converters.register_object("_ncnn_from_onnx", _NcnnFromOnnx)
    runtimes.register_object("_ncnn", _NcnnRuntime)
    runtimes.register_object("_cuda_only", _CudaOnlyOrt)
    yield
    converters.unregister("_ncnn_from_onnx")
    runtimes.unregister("_ncnn")
    runtimes.unregister("_cuda_only")


def test_new_hop_and_runtime_extend_every_route_through_their_format(extra_hops):
    routes = {r.id: r for r in enumerate_routes()}
    # One new hop from ONNX gives a route through each torch->ONNX exporter.
    assert routes["torch/onnx/ncnn"].converters == ("onnx_from_torch", "_ncnn_from_onnx")
    assert routes["torch/onnx_legacy/ncnn"].runtime == "_ncnn"  # registry key; the id shows the runtime's name
    assert routes["onnx/ncnn"].converters == ("_ncnn_from_onnx",)


def test_availability_reports_missing_dependency_with_install_hint(extra_hops):
    route = next(r for r in enumerate_routes() if r.id == "torch/onnx/ncnn")
    avail = availability(route, "cpu")
    assert avail.status is Status.MISSING_DEP
    assert avail.reason == "ncnn not installed"
    assert avail.hint == "pip install 'convcheck[ncnn]'"


def test_availability_reports_no_device(extra_hops):
    route = next(r for r in enumerate_routes() if r.runtime == "_cuda_only")
    assert availability(route, "cpu").status is Status.NO_DEVICE
    assert "does not run on cpu" in availability(route, "cpu").reason
    ort_route = next(r for r in enumerate_routes() if r.id == "torch/onnx/ort")
    assert availability(ort_route, "cpu").available


def test_duplicate_route_ids_are_a_loud_error(fresh_routes):
    class _AnotherOrt(Runtime):
        name = "ort"  # a second runtime that would also be written torch/onnx/ort
        format = Format.ONNX

    runtimes.register_object("ort_again", _AnotherOrt)
    try:
        with pytest.raises(RuntimeError, match="two routes share the id 'torch/onnx/ort'"):
            enumerate_routes()
    finally:
        runtimes.unregister("ort_again")


def test_select_routes():
    assert [r.id for r in select_routes("torch/onnx/ort")] == ["torch/onnx/ort"]
    assert len(select_routes("all")) == len(enumerate_routes())
    assert {r.id for r in select_routes(None)} <= {r.id for r in enumerate_routes()}
    with pytest.raises(ConvcheckError, match=r"unknown route 'torch/onx/ort'.*did you mean 'torch/onnx/ort'"):
        select_routes("torch/onx/ort")
    with pytest.raises(ConvcheckError, match="empty"):
        select_routes(",")
