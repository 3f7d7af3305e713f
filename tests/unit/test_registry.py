from __future__ import annotations

import pytest

from convcheck.errors import ConvcheckError
from convcheck.registry import Registry, converters, load_dotted, models, runtimes


def test_builtin_entries_are_lazy_dotted_paths():
    reg = Registry("thing", "convcheck.no-such-group", "convcheck things")
    reg.register("ordered_dict", "collections:OrderedDict")
    assert reg._loaded == {}  # nothing imported at registration
    import collections

    assert reg.get("ordered_dict") is collections.OrderedDict
    assert reg.names() == ["ordered_dict"]


def test_unknown_name_suggests_the_close_one():
    with pytest.raises(ConvcheckError, match=r"unknown model 'mlp_tabulr'.*did you mean 'mlp_tabular'"):
        models.get("mlp_tabulr")


def test_conflicting_registration_is_refused():
    reg = Registry("thing", "convcheck.no-such-group", "x")
    reg.register("a", "collections:OrderedDict")
    reg.register("a", "collections:OrderedDict")  # the same again is fine
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", "collections:Counter")


def test_bad_dotted_path_names_the_attribute():
    with pytest.raises(ImportError, match="no attribute 'Nope'"):
        load_dotted("collections:Nope")
    with pytest.raises(ValueError, match="module:Attribute"):
        load_dotted("collections.OrderedDict")


def test_entry_point_plugins_are_picked_up(monkeypatch):
    from importlib.metadata import EntryPoint

    import convcheck.registry as registry_mod

    ep = EntryPoint(name="plugin_thing", value="collections:Counter", group="convcheck.test-plugins")
    monkeypatch.setattr(registry_mod, "entry_points",
                        lambda group: [ep] if group == "convcheck.test-plugins" else [])
    reg = Registry("thing", "convcheck.test-plugins", "x")
    reg.register("builtin", "collections:OrderedDict")
    assert reg.names() == ["builtin", "plugin_thing"]
    import collections

    assert reg.get("plugin_thing") is collections.Counter


def test_every_builtin_entry_loads_and_declares_its_contract():
    for _, conv in converters.items():
        assert conv.__name__.split("From")[0] and "From" in conv.__name__, "converters are named XFromY"
        if getattr(conv, "passes_through", False):  # hands over the user's own file: any source, no package
            assert conv.hop and conv.source is None and conv.target
            continue
        assert conv.hop and conv.source and conv.target and conv.requires
    for _, rt in runtimes.items():
        assert rt.name and rt.format and rt.devices and rt.precisions
    for name, spec in models.items():
        assert spec.name == name and spec.inputs and spec.outputs and spec.builders


def test_a_broken_plugin_does_not_stop_reports_reading_metadata():
    """Lock-in facts and deployment profiles read every registered class; a plugin whose module fails to
    import is skipped there (its routes still say what is wrong in `convcheck routes`)."""
    from convcheck.registry import runtimes
    from convcheck.reports.audit_evidence import load_profiles
    from convcheck.reports.lockin import load_lockin_data

    runtimes.register("_broken_plugin", "convcheck_no_such_module_xyz:Runtime")
    try:
        assert "_broken_plugin" not in dict(runtimes.loadable_items())
        assert load_lockin_data()["runtime_tools"]["ort"] == ["onnxruntime"]
        assert "*/ort" in load_profiles()["cpu-server"]["routes"]
    finally:
        runtimes.unregister("_broken_plugin")
