"""convcheck: does this model, taken down this conversion route, still compute the same function?

The package root stays import-light on purpose: no ML framework is imported until a converter
or runtime actually runs (see convcheck.registry). The Python API (`convcheck.run_matrix`,
`convcheck.check`, `convcheck.resume` and their option classes, from convcheck.api) is looked up
on first use, so `import convcheck` stays as light as before.
"""

from convcheck.version import __version__

#: Names this package lends from convcheck.api, imported on first access (PEP 562).
_API = ("run_matrix", "check", "matrix", "Results", "ConversionFailures", "resume", "audit", "load", "AuditResult", "MatrixOptions", "CheckOptions", "EngineOptions", "ReportOptions",
        "RunResult", "RunInterrupted")

__all__ = ["__version__", *_API]


def __getattr__(name: str):  # noqa: ANN202
    if name in _API:
        from convcheck import api

        return getattr(api, name)
    raise AttributeError(f"module 'convcheck' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
