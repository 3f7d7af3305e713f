"""`convcheck ecosystem refresh`: the lock-in data's maintenance signals, re-read from PyPI's JSON API.

For every package the routes' tools come from (reports/data/lockin.json's `tools`), PyPI's
`https://pypi.org/pypi/<package>/json` gives:
- **recency**: the latest stable release (pre-releases and yanked releases are not counted) and the day its
  first file was uploaded;
- **cadence**: stable releases in the 365 days before the snapshot, and the median days between the last
  ten of them;
- **yanked releases**: every yanked version with its reason (yanked in the last two years count as a signal);
- **deprecations PyPI states**: a `Development Status :: 7 - Inactive` classifier, and the known
  vulnerabilities PyPI lists for the latest release.

Curated deprecations (read from a project's own docs, each with its source) are kept; those PyPI states are
replaced on every refresh. The result is a complete lock-in data file with the snapshot's date, written to
`$CONVCHECK_HOME/ecosystem/lockin-YYYY-MM-DD.json` (a dated file the user can diff against the last one or
the shipped one); scoring then reads the newest such file. Offline (no refresh ever made) the shipped
snapshot is what scores. A package PyPI does not answer for keeps its previous figures, and the refresh says
so.
"""

from __future__ import annotations

import copy
import datetime
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from convcheck.errors import ConvcheckError

PYPI_JSON = "https://pypi.org/pypi/{package}/json"
INACTIVE = "Development Status :: 7 - Inactive"
#: A deprecation PyPI states, as the severity the scorer reads (reports/lockin.py: 0 none .. 1 abandoned).
INACTIVE_SEVERITY = 0.75
YANKED_WINDOW_DAYS = 730
Fetch = Callable[[str], dict[str, Any]]


@dataclass
class Refreshed:
    """What a refresh made: the new data, where it was written, and what changed per tool."""

    data: dict[str, Any]
    path: Path | None
    changes: list[tuple[str, str]] = field(default_factory=list)  # (tool, what changed)
    unreachable: dict[str, str] = field(default_factory=dict)  # package -> why it kept its old figures


def snapshots_dir() -> Path:
    from convcheck.paths import home

    return home() / "ecosystem"


def newest_snapshot() -> Path | None:
    """The newest refreshed snapshot in this convcheck home, or None (then the shipped one scores)."""
    folder = snapshots_dir()
    found = sorted(folder.glob("lockin-????-??-??.json")) if folder.is_dir() else []
    return found[-1] if found else None


def fetch_pypi(package: str, timeout: float = 20.0) -> dict[str, Any]:
    """PyPI's JSON document for `package` (urllib, no dependency; honours HTTPS_PROXY like pip)."""
    import urllib.request

    request = urllib.request.Request(PYPI_JSON.format(package=package),
                                     headers={"Accept": "application/json", "User-Agent": "convcheck-ecosystem"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - a fixed https URL
        return json.loads(response.read().decode("utf-8"))


def recorded(folder: Path) -> Fetch:
    """A fetch that reads `<folder>/<package>.json` (responses saved from PyPI): for tests and air-gapped
    machines."""
    def fetch(package: str) -> dict[str, Any]:
        path = folder / f"{package}.json"
        if not path.is_file():
            raise FileNotFoundError(f"no recorded response {path.name} in {folder}")
        return json.loads(path.read_text(encoding="utf-8"))

    if not folder.is_dir():
        raise ConvcheckError(f"--responses {folder}: not a folder; give a folder of <package>.json files saved "
                             f"from {PYPI_JSON.format(package='<package>')}")
    return fetch


def signals(document: dict[str, Any], today: datetime.date) -> dict[str, Any]:
    """The maintenance signals of one package from its PyPI JSON document, as of `today`."""
    from packaging.version import InvalidVersion, Version

    stable: list[tuple[Version, datetime.date]] = []
    yanked: list[dict[str, Any]] = []
    for text, files in (document.get("releases") or {}).items():
        if not files:
            continue
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        uploaded = min(_day(f["upload_time_iso_8601"] if f.get("upload_time_iso_8601") else f["upload_time"])
                       for f in files)
        if uploaded > today:  # a file uploaded after the snapshot day is not in the snapshot
            continue
        if all(f.get("yanked") for f in files):
            yanked.append({"version": text, "date": uploaded.isoformat(),
                           "reason": next((f.get("yanked_reason") for f in files if f.get("yanked_reason")), None)})
            continue
        if not version.is_prerelease and not version.is_devrelease:
            stable.append((version, uploaded))
    if not stable:
        raise ValueError("no stable release on PyPI")
    stable.sort()
    latest, released = stable[-1]
    by_date = sorted(day for _, day in stable)
    last = by_date[-10:]
    gaps = [(b - a).days for a, b in zip(last, last[1:])]
    year_ago = today - datetime.timedelta(days=365)
    info = document.get("info") or {}
    recent_yanked = [y for y in yanked if (today - _day(y["date"])).days <= YANKED_WINDOW_DAYS]
    return {
        "latest": str(latest), "released": released.isoformat(),
        "cadence": {"releases_last_365_days": sum(1 for d in by_date if d > year_ago),
                    "median_days_between_releases": statistics.median(gaps) if gaps else None},
        "yanked": sorted(recent_yanked, key=lambda y: y["date"]),
        "inactive": INACTIVE in (info.get("classifiers") or []),  # `info` describes the newest upload
        "vulnerabilities": [v.get("id") for v in document.get("vulnerabilities") or [] if isinstance(v, dict)],
    }


def _day(timestamp: str) -> datetime.date:
    return datetime.date.fromisoformat(timestamp[:10])


def refresh(data: dict[str, Any], fetch: Fetch = fetch_pypi, today: datetime.date | None = None,
            write: bool = True) -> Refreshed:
    """The lock-in data with every tool's maintenance signals re-read (one fetch per package)."""
    today = today or datetime.date.today()
    new = copy.deepcopy(data)
    documents: dict[str, dict[str, Any] | Exception] = {}
    for tool in new["tools"].values():
        package = tool["package"]
        if package not in documents:
            try:
                documents[package] = fetch(package)
            except Exception as exc:  # noqa: BLE001 - one unreachable package keeps its old figures
                documents[package] = exc
    out = Refreshed(new, None)
    for name, tool in new["tools"].items():
        got = documents[tool["package"]]
        if isinstance(got, Exception):
            out.unreachable[tool["package"]] = f"{type(got).__name__}: {got}"
            continue
        try:
            found = signals(got, today)
        except (KeyError, TypeError, ValueError) as exc:
            out.unreachable[tool["package"]] = f"unreadable PyPI document ({exc})"
            continue
        before = (tool.get("latest"), tool.get("released"))
        url = PYPI_JSON.format(package=tool["package"])
        curated = [d for d in tool.get("deprecations") or [] if d.get("origin") != "pypi"]
        stated = []
        if found["inactive"]:
            stated.append({"what": f"PyPI classifier '{INACTIVE}' on the latest release", "severity": INACTIVE_SEVERITY,
                           "source": url, "origin": "pypi"})
        tool.update(latest=found["latest"], released=found["released"], cadence=found["cadence"],
                    yanked=found["yanked"], vulnerabilities=found["vulnerabilities"], deprecations=curated + stated,
                    source=url)
        if before != (found["latest"], found["released"]):
            out.changes.append((name, f"{before[0]} ({before[1]}) -> {found['latest']} ({found['released']})"))
        new_yanked = {y["version"] for y in found["yanked"]} - {y["version"] for y in data["tools"][name].get("yanked")
                                                               or []}
        if new_yanked:
            out.changes.append((name, f"yanked: {', '.join(sorted(new_yanked))}"))
    if len(out.unreachable) == len(documents):
        raise ConvcheckError(f"PyPI answered for none of the {len(documents)} packages (first: "
                             f"{next(iter(out.unreachable.values()))}); offline, convcheck keeps scoring with the "
                             f"snapshot of {data['snapshot']['date']}")
    packages = sorted({t["package"] for t in new["tools"].values()} - set(out.unreachable))
    new["snapshot"] = {
        "date": today.isoformat(),
        "note": ("Maintenance signals (latest stable release and its date, release cadence, yanked releases, "
                 "PyPI's Inactive classifier and listed vulnerabilities) re-read from the PyPI JSON API by "
                 f"`convcheck ecosystem refresh` on {today.isoformat()}"
                 + (f"; not refreshed (kept from {data['snapshot']['date']}): {', '.join(sorted(out.unreachable))}"
                    if out.unreachable else "") + ". Other facts as in the shipped snapshot: "
                 + str(data["snapshot"].get("note", ""))),
        "refreshed_from": data["snapshot"]["date"],
        "sources": sorted(set([PYPI_JSON.format(package=p) for p in packages]
                              + list(data["snapshot"].get("sources", [])))),
    }
    if write:
        from convcheck.atomic import write_json_atomic

        folder = snapshots_dir()
        folder.mkdir(parents=True, exist_ok=True)
        out.path = folder / f"lockin-{today.isoformat()}.json"
        write_json_atomic(out.path, new)
    return out
