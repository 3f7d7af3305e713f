"""`convcheck.check(model, example_inputs, ...)` and `convcheck.matrix(...)` for the model you hold.

A live model (a `torch.nn.Module`, a `keras.Model`) is written into the run folder first, in the form
`convcheck check` reads (torch.export's `.pt2`, Keras' `.keras`), with its example inputs beside it as
a `.npz`: workers in other processes (and other environments) load it from there, and `resume(run)`
finds it again. The example inputs are the first parity sample; seeded draws of the same shapes and
value ranges follow, so a cell is judged on more than the one batch you passed.

A path (or a `package.module:factory`) is checked as `convcheck check PATH` checks it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from convcheck.api.options import CheckOptions, EngineOptions, MatrixOptions, ReportOptions, Words
from convcheck.api.run import CellDone, RunResult, check as check_options, run_matrix
from convcheck.errors import ConvcheckError

ExampleInputs = Union[Any, Sequence[Any], Mapping[str, Any]]


def check(model: Any, example_inputs: ExampleInputs = None, *, routes: Optional[Words] = None,
          precision: Words = "all", device: Words = "auto", samples: int = 4, name: Optional[str] = None,
          dynamic_shapes: Any = None, out: Union[str, "os.PathLike[str]", None] = None,
          engine: Optional[EngineOptions] = None, report: Optional[ReportOptions] = None,
          on_cell_done: Optional[CellDone] = None, **options: Any) -> RunResult:
    """Check one model down every route that starts from its framework (or the `routes` named).

    `model`: a torch.nn.Module, a keras.Model, a model file or folder (.onnx, .pt2, .keras, SavedModel,
    .tflite, ...), a `package.module:factory`, or CheckOptions (then `example_inputs` may be EngineOptions,
    as `check(options, engine)` always took). `example_inputs`: a tensor/array, a tuple of them in the
    model's argument order, or a dict by input name. `precision` / `device`: names joined by commas, or
    lists ("all", "auto" as on the CLI). `dynamic_shapes` goes to torch.export for a torch model.
    Any other CheckOptions field (bench_seconds, atol/rtol, tvm_tune, ...) may be given by name, and so may
    ReportOptions' fail_on and mlflow (a tracking URI, or "default": one MLflow run per cell).

    Returns the RunResult: `.cells`, `.failures()`, `.to_pandas()`, `.raise_for_failures()`, and HTML in
    Jupyter. Usage errors raise ConvcheckError before any work; a cell that fails is a result, not an
    exception (`raise_for_failures()` turns it into one).
    """
    if isinstance(model, MatrixOptions):
        raise ConvcheckError("check takes CheckOptions or a model, not MatrixOptions (run_matrix() takes MatrixOptions)")
    if isinstance(model, CheckOptions):
        if isinstance(example_inputs, EngineOptions) and engine is None:
            engine, example_inputs = example_inputs, None
        if example_inputs is not None:
            raise ConvcheckError("check(CheckOptions, ...) takes its inputs from the options (input_data, examples), "
                                 "not example_inputs")
        return check_options(model, engine, report, on_cell_done=on_cell_done)
    report = _report(report, options)
    run_out = _run_folder(out)
    given, examples = _materialize(model, example_inputs, run_out / "model", name, dynamic_shapes)
    opts = CheckOptions(given, routes=routes, precisions=precision, devices=device, samples=samples,
                        examples=examples, out=run_out, **_plan_fields(options, CheckOptions))
    return check_options(opts, engine, report, on_cell_done=on_cell_done)


def matrix(models: Union[Words, Iterable[Any], None] = None, *, routes: Optional[Words] = None,
           precision: Words = "all", device: Words = "auto", size: str = "full", samples: int = 4,
           out: Union[str, "os.PathLike[str]", None] = None, engine: Optional[EngineOptions] = None,
           report: Optional[ReportOptions] = None, on_cell_done: Optional[CellDone] = None,
           **options: Any) -> RunResult:
    """Models x routes x targets, as `convcheck matrix`. `models`: zoo names (a list or "a,b"; None: the
    whole zoo), and/or your models: a path, or a `(model, example_inputs)` pair for a live torch or Keras
    model (written into the run folder as check() writes it). Other MatrixOptions fields by name."""
    report = _report(report, options)
    run_out = _run_folder(out)
    zoo: list[str] = []
    files: list[str] = []
    examples: list[str] = []
    items = [models] if isinstance(models, str) else list(models) if models is not None else []
    for item in items:
        if isinstance(item, str) and not Path(item).exists() and "," in item:
            zoo += [w.strip() for w in item.split(",") if w.strip()]
        elif isinstance(item, tuple) and len(item) == 2 and not isinstance(item[0], str):
            live, inputs = item
            given, npz = _materialize(live, inputs, run_out / "models" / f"model{len(files)}", None, None)
            files.append(given)
            examples.append(str(npz) if npz else "")
        elif isinstance(item, (str, os.PathLike)) and (Path(item).exists() or ":" in str(item)):
            files.append(os.fspath(item))
            examples.append("")
        elif isinstance(item, str):
            zoo.append(item)
        else:
            raise ConvcheckError(f"matrix(models=...): {type(item).__name__} is not a zoo model name, a model path "
                                 "or a (model, example_inputs) pair")
    if models is not None and not zoo and not files:
        raise ConvcheckError("matrix(models=...) names no model: give zoo names, paths or (model, example_inputs)")
    opts = MatrixOptions(tuple(zoo) or None, model_files=tuple(files),
                         model_examples=tuple(examples) if any(examples) else (), routes=routes,
                         precisions=precision, devices=device, size=size, samples=samples, out=run_out,
                         **_plan_fields(options, MatrixOptions))
    return run_matrix(opts, engine, report, on_cell_done=on_cell_done)


# -- writing a live model where workers can load it ---------------------------------------------------
def _run_folder(out: Union[str, "os.PathLike[str]", None]) -> Path:
    """The run's folder, chosen now: the model is written into it before the run starts."""
    if out is not None:
        return Path(out)
    from convcheck.results import new_run_id

    return Path("runs") / new_run_id()


def _report(report: Optional[ReportOptions], options: dict[str, Any]) -> Optional[ReportOptions]:
    """`fail_on=` and `mlflow=` given by name, as ReportOptions (not beside a ReportOptions of your own)."""
    given = {k: options.pop(k) for k in ("fail_on", "mlflow", "lockin_weights") if k in options}
    if not given:
        return report
    if report is not None:
        raise ConvcheckError(f"give {', '.join(given)} inside report=ReportOptions(...), or without report=, not both")
    return ReportOptions(**given)


def _plan_fields(options: dict[str, Any], cls: type) -> dict[str, Any]:
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ConvcheckError(f"unknown option {unknown[0]!r}; {cls.__name__} takes {', '.join(sorted(names))}")
    return options


def _materialize(model: Any, example_inputs: ExampleInputs, folder: Path, name: Optional[str],
                 dynamic_shapes: Any) -> tuple[str, Optional[Path]]:
    """(what CheckOptions.model names, the examples .npz or None) for a live model, a path or a factory."""
    if isinstance(model, (str, os.PathLike)):
        given = os.fspath(model)
        if example_inputs is None:
            return given, None
        names = None if isinstance(example_inputs, Mapping) else _input_names(given)
        return given, _write_examples(folder, example_inputs, names)
    from convcheck.zoo.user_files import _framework_of

    framework = _framework_of(model)
    if example_inputs is None:
        raise ConvcheckError(f"check({type(model).__name__}): give example_inputs (a tensor, a tuple of them in the "
                             "model's argument order, or a dict by input name): convcheck exports the model with them")
    # The name the reports show: yours, a Keras model's own name, else the class (`TinyNet`).
    keras_name = getattr(model, "name", None) if framework != "torch" else None
    stem = _safe_name(name or (keras_name if isinstance(keras_name, str) and keras_name else type(model).__name__))
    folder.mkdir(parents=True, exist_ok=True)
    if framework == "torch":
        return _export_torch(model, example_inputs, folder / f"{stem}.pt2", dynamic_shapes)
    if framework in ("keras", "tensorflow", "tf_keras"):
        return _save_keras(model, example_inputs, folder / f"{stem}.keras")
    if callable(model):  # a JAX function (or flax apply): nothing a worker in another process can load from disk
        raise ConvcheckError(f"check({getattr(model, '__name__', type(model).__name__)}): a live JAX function cannot "
                             "be written where convcheck's workers load it yet; check its jax2onnx/.tflite export, "
                             "or give a package.module:factory")
    raise ConvcheckError(f"check(): a {type(model).__module__}.{type(model).__name__} is not a model convcheck takes: "
                         "give a torch.nn.Module, a keras.Model, a model file or a package.module:factory")


def _input_names(given: str) -> list[str]:
    """The input names of a model file, in order, to name a tuple of example inputs."""
    from convcheck.zoo.user_files import spec_for_model

    try:
        return [i.name for i in spec_for_model(given, [], None).inputs]
    except ConvcheckError as exc:
        raise ConvcheckError(f"{exc}; or give example_inputs as a dict by input name") from None


def _safe_name(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "model"
    return cleaned[:64]


def _as_tuple(example_inputs: ExampleInputs) -> tuple[Any, ...]:
    return tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)


def _array(value: Any) -> Any:
    import numpy as np

    if hasattr(value, "detach"):  # a torch tensor (on any device)
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _write_examples(folder: Path, example_inputs: ExampleInputs, names: Optional[list[str]]) -> Path:
    """The example inputs as `examples.npz`, one array per input name (the run's own copy of them)."""
    import numpy as np

    if isinstance(example_inputs, Mapping):
        arrays = {str(k): _array(v) for k, v in example_inputs.items()}
    else:
        values = _as_tuple(example_inputs)
        if names is None or len(names) != len(values):
            raise ConvcheckError(f"example_inputs holds {len(values)} arrays; the model takes "
                                 f"{len(names or [])} inputs ({', '.join(names or [])}): give one per input, "
                                 "in order, or a dict by name")
        arrays = {n: _array(v) for n, v in zip(names, values)}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "examples.npz"
    np.savez(path, **arrays)
    return path


def _export_torch(model: Any, example_inputs: ExampleInputs, path: Path, dynamic_shapes: Any
                  ) -> tuple[str, Path]:
    import torch

    if isinstance(example_inputs, Mapping):
        raise ConvcheckError("check(torch model): give example_inputs as a tuple in forward()'s argument order, "
                             "not a dict (the exported program is called positionally)")
    args = tuple(torch.as_tensor(v) if not isinstance(v, torch.Tensor) else v for v in _as_tuple(example_inputs))
    was_training = model.training
    model.eval()
    try:
        program = torch.export.export(model, args, dynamic_shapes=dynamic_shapes)
    except Exception as exc:  # noqa: BLE001 - the user's model: its own error, in one line
        raise ConvcheckError(f"check({type(model).__name__}): torch.export could not export it with these example "
                             f"inputs ({type(exc).__name__}: {str(exc).splitlines()[0][:300]}); fix the model or "
                             "give a .pt2 / .onnx you exported yourself") from None
    finally:
        model.train(was_training)
    torch.export.save(program, str(path))
    names = list(program.graph_signature.user_inputs)
    return str(path), _write_examples(path.parent, args, names)


def _save_keras(model: Any, example_inputs: ExampleInputs, path: Path) -> tuple[str, Path]:
    try:
        names = [t.name for t in model.inputs]
    except (AttributeError, ValueError):
        raise ConvcheckError(f"check({type(model).__name__}): this Keras model has no declared inputs (a subclassed "
                             "model never called); build it as a Functional or Sequential model with "
                             "keras.Input, or call it once on the example inputs first") from None
    try:
        model.save(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ConvcheckError(f"check({type(model).__name__}): Keras could not save it as .keras "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0][:300]}); a custom layer needs "
                             "get_config and @keras.saving.register_keras_serializable") from None
    return str(path), _write_examples(path.parent, example_inputs, names)
