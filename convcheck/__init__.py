"""convcheck: does this model, taken down this conversion route, still compute the same function?

The package root stays import-light on purpose: no ML framework is imported until a converter
or runtime actually runs (see convcheck.registry).
"""

__version__ = "0.1.0"
