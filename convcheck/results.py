"""results.json: the contract every report reads (documented in docs/results.md).

Written atomically (temporary file + rename) after every cell, so a killed run leaves a valid
file with the cells that finished and `finished: null`, never a half-written one.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from importlib import resources
from typing import Any

from convcheck.environment import ENGINE_PACKAGES, host, packages
from convcheck.version import __version__

SCHEMA_VERSION = 1


def new_run_id() -> str:
    now = dt.datetime.now()
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def new_run(run_id: str, settings: dict[str, Any], distributions: list[str]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "run": {
            "id": run_id,
            "started": now_iso(),
            "finished": None,
            "convcheck_version": __version__,
            "host": host(),
            "packages": packages(list(dict.fromkeys([*ENGINE_PACKAGES, *distributions]))),
            "settings": settings,
        },
        "summary": {},
        "cells": [],
    }


def summarize(cells: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for cell in cells:
        counts[cell["status"]] = counts.get(cell["status"], 0) + 1
    return counts


def schema() -> dict[str, Any]:
    text = resources.files("convcheck").joinpath("schemas/results.schema.json").read_text(encoding="utf-8")
    return json.loads(text)
