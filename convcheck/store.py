"""The run store: every run and its cells in one embedded SQLite file, `<CONVCHECK_HOME>/store.sqlite`.

results.json stays the contract (docs/results.md); the store keeps *every* run's cells side by side so
a run can be resumed (`finished_cells`), listed (`runs`), named loosely (`resolve`: an id prefix,
`latest`, `previous`) and rendered back into the very results.json document it came from
(`document`), which is what `diff` and the reports read.

Layout (schema version in `PRAGMA user_version`, migrated in `_migrate`):

- `runs`: one row per run id: `started`, `finished` (NULL while running, or if the run was killed),
  `convcheck_version`, and the JSON columns `host`, `packages` (distribution -> version), `settings`,
  plus `extra`: any other field of the run object, so a field added to results.json later survives
  the round trip without a migration.
- `cells`: one row per (run_id, model, route, device, precision) — a UNIQUE key, written with an
  UPSERT, so a cell is there exactly once however often it is recorded; `status` is a column for
  counting, the cell itself is JSON text. `seq` (the rowid) keeps the order cells were first recorded
  in; re-recording a cell updates it in place and keeps its position.

Concurrency: two runs on one machine write the same file at once. The file is in WAL mode (readers
never block the writer, nor the writer readers); every write is one short `BEGIN IMMEDIATE`
transaction (the write lock is taken up front, so two writers queue on the busy timeout instead of
one failing with "database is locked" when it tries to upgrade a read lock); the busy timeout is
30 s, far longer than any transaction here (one cell's JSON) holds the lock.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from convcheck.errors import ConvcheckError
from convcheck.paths import home
from convcheck.results import SCHEMA_VERSION as RESULTS_SCHEMA_VERSION
from convcheck.results import summarize

#: Version of the store's own tables (PRAGMA user_version); bump it with a step in `_migrate`.
STORE_SCHEMA_VERSION = 1

#: Fields of the results.json run object that have a column of their own; any other goes to `extra`.
_RUN_COLUMNS = ("id", "started", "finished", "convcheck_version", "host", "packages", "settings")

#: How long a write waits for another process's transaction (sqlite3's busy timeout), in seconds.
_BUSY_TIMEOUT_S = 30.0

CellKey = tuple[str, str, str, str]

_SCHEMA_V1 = """
CREATE TABLE runs (
    id                TEXT PRIMARY KEY,
    started           TEXT NOT NULL,
    finished          TEXT,
    convcheck_version TEXT,
    schema_version    INTEGER NOT NULL,
    host              TEXT NOT NULL,
    packages          TEXT NOT NULL,
    settings          TEXT NOT NULL,
    extra             TEXT NOT NULL
);
CREATE TABLE cells (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    model       TEXT NOT NULL,
    route       TEXT NOT NULL,
    device      TEXT NOT NULL,
    precision   TEXT NOT NULL,
    status      TEXT NOT NULL,
    cell        TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    UNIQUE (run_id, model, route, device, precision)
);
CREATE INDEX runs_started ON runs(started);
"""


def store_path() -> Path:
    """Where the store lives by default: `<CONVCHECK_HOME>/store.sqlite`."""
    return home() / "store.sqlite"


def _dumps(obj: Any) -> str:
    # results.json is JSON-safe by contract (NaN/Inf are written as null): refuse anything else
    # rather than store text no JSON reader can parse.
    return json.dumps(obj, allow_nan=False, separators=(",", ":"))


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


class Store:
    """One connection to the store file; use as a context manager, or call `close()`."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; every write says BEGIN IMMEDIATE itself.
        self._db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            self._db.execute("PRAGMA foreign_keys = ON")
            self._wal()
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    # -- lifecycle ---------------------------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- setup -------------------------------------------------------------------------------------
    def _wal(self) -> None:
        # WAL is a property of the file (persistent): once set, every later open finds it and this is
        # a read. Switching to it needs the file to itself for a moment, and SQLite answers SQLITE_BUSY
        # at once, without calling the busy handler, when another process holds it — as when two runs
        # create a new store at the same instant (seen: 3 in 200 such races). So: retry, up to the
        # same 30 s the busy timeout grants a write.
        deadline = time.monotonic() + _BUSY_TIMEOUT_S
        delay = 0.005
        while True:
            try:
                mode = self._db.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
        if str(mode).lower() != "wal":
            raise ConvcheckError(f"the store {self.path} cannot use WAL journaling (got {mode!r}): "
                                 "put CONVCHECK_HOME on a local file system")

    def _migrate(self) -> None:
        if self._db.execute("PRAGMA user_version").fetchone()[0] == STORE_SCHEMA_VERSION:
            return  # the usual case: no write lock taken just to open the store
        with self._write():  # re-read under the lock: another process may have migrated meanwhile
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > STORE_SCHEMA_VERSION:
                raise ConvcheckError(
                    f"the store {self.path} was written by a newer convcheck (store schema {version}, "
                    f"this one reads up to {STORE_SCHEMA_VERSION}): upgrade convcheck or point "
                    "CONVCHECK_HOME elsewhere")
            if version < 1:
                for statement in _SCHEMA_V1.split(";"):
                    if statement.strip():
                        # executescript() would COMMIT first: run the statements one by one instead,
                        # inside this IMMEDIATE transaction, so two processes never both create tables.
                        self._db.execute(statement)
            # Later versions: `if version < 2: ALTER TABLE ...` here, each step in this transaction.
            if version != STORE_SCHEMA_VERSION:
                self._db.execute(f"PRAGMA user_version = {STORE_SCHEMA_VERSION}")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, holding the write lock from its first statement."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            if self._db.in_transaction:  # SQLite rolls some errors back itself
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- writing -----------------------------------------------------------------------------------
    def begin_run(self, run: dict[str, Any], schema_version: int = RESULTS_SCHEMA_VERSION) -> None:
        """Record a run (the results.json `run` object). Beginning an id already in the store (a resumed
        run) keeps its cells and its first `started`, and updates everything else from `run`."""
        extra = {k: v for k, v in run.items() if k not in _RUN_COLUMNS}
        row = (run["id"], run["started"], run.get("finished"), run.get("convcheck_version"), schema_version,
               _dumps(run.get("host", {})), _dumps(run.get("packages", {})), _dumps(run.get("settings", {})),
               _dumps(extra))
        with self._write() as db:
            db.execute(
                "INSERT INTO runs (id, started, finished, convcheck_version, schema_version, host, packages,"
                " settings, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET finished = excluded.finished,"
                " convcheck_version = excluded.convcheck_version, schema_version = excluded.schema_version,"
                " host = excluded.host, packages = excluded.packages, settings = excluded.settings,"
                " extra = excluded.extra",
                row,
            )

    def record_cell(self, run_id: str, cell: dict[str, Any]) -> None:
        """Insert or replace one finished cell of `run_id` (one transaction)."""
        key = _key(cell)
        text = _dumps(cell)
        with self._write() as db:
            try:
                db.execute(
                    "INSERT INTO cells (run_id, model, route, device, precision, status, cell, recorded_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT(run_id, model, route, device, precision) DO UPDATE SET"
                    " status = excluded.status, cell = excluded.cell, recorded_at = excluded.recorded_at",
                    (run_id, *key, cell["status"], text, _now()),
                )
            except sqlite3.IntegrityError as exc:
                if "FOREIGN KEY" in str(exc).upper():
                    raise ValueError(f"run {run_id!r} is not in the store {self.path}: begin_run() it first") from exc
                raise

    def finish_run(self, run_id: str, finished: str) -> None:
        with self._write() as db:
            updated = db.execute("UPDATE runs SET finished = ? WHERE id = ?", (finished, run_id)).rowcount
        if not updated:
            raise ValueError(f"run {run_id!r} is not in the store {self.path}")

    # -- reading -----------------------------------------------------------------------------------
    def finished_cells(self, run_id: str) -> dict[CellKey, dict[str, Any]]:
        """Every cell recorded for `run_id`, by (model, route, device, precision): what a resume skips."""
        rows = self._db.execute(
            "SELECT model, route, device, precision, cell FROM cells WHERE run_id = ? ORDER BY seq", (run_id,))
        return {(m, r, d, p): json.loads(text) for m, r, d, p, text in rows}

    def settings(self, run_id: str) -> dict[str, Any]:
        """A run's `settings` object (what it was asked, and the command that planned it)."""
        row = self._db.execute("SELECT settings FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise ConvcheckError(f"run {run_id!r} is not in the store {self.path}")
        return json.loads(row[0])

    def runs(self) -> list[dict[str, Any]]:
        """Every run, newest first: id, started, finished (None while running or if killed),
        convcheck_version, cells (how many), summary (status -> count), settings."""
        counts: dict[str, dict[str, int]] = {}
        for run_id, status, n in self._db.execute(
                "SELECT run_id, status, COUNT(*) FROM cells GROUP BY run_id, status ORDER BY run_id, status"):
            counts.setdefault(run_id, {})[status] = n
        out = []
        for run_id, started, finished, version, settings in self._db.execute(
                "SELECT id, started, finished, convcheck_version, settings FROM runs"
                " ORDER BY started DESC, rowid DESC"):
            summary = counts.get(run_id, {})
            out.append({"id": run_id, "started": started, "finished": finished, "convcheck_version": version,
                        "cells": sum(summary.values()), "summary": summary, "settings": json.loads(settings)})
        return out

    def document(self, run_id: str) -> dict[str, Any]:
        """The run as the results.json document run_cells writes: schema_version, run, summary, cells
        (in the order they were first recorded)."""
        row = self._db.execute(
            "SELECT id, started, finished, convcheck_version, schema_version, host, packages, settings, extra"
            " FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise ConvcheckError(f"run {run_id!r} is not in the store {self.path}")
        rid, started, finished, version, schema_version, host, packages, settings, extra = row
        run = {"id": rid, "started": started, "finished": finished, "convcheck_version": version,
               "host": json.loads(host), "packages": json.loads(packages), "settings": json.loads(settings),
               **json.loads(extra)}
        cells = [json.loads(text) for (text,) in self._db.execute(
            "SELECT cell FROM cells WHERE run_id = ? ORDER BY seq", (run_id,))]
        return {"schema_version": schema_version, "run": run, "summary": summarize(cells), "cells": cells}

    def resolve(self, ref: str) -> str:
        """A run id from what a user typed: an id, a unique prefix of one, `latest` or `previous`."""
        ref = ref.strip()
        ids = [r[0] for r in self._db.execute("SELECT id FROM runs ORDER BY started DESC, rowid DESC")]
        if not ids:
            raise ConvcheckError(f"no runs in the store {self.path} yet: run `convcheck matrix` first")
        if ref in ids:
            return ref
        if ref == "latest":
            return ids[0]
        if ref == "previous":
            if len(ids) < 2:
                raise ConvcheckError(f"there is no previous run: the store holds one run ({ids[0]})")
            return ids[1]
        matches = [i for i in ids if ref and i.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise ConvcheckError(f"run {ref!r} is ambiguous: it starts {len(matches)} run ids "
                                 f"({_some(matches)}); type more of the id")
        raise ConvcheckError(f"unknown run {ref!r}: name a run id, a unique prefix of one, `latest` or "
                             f"`previous` (newest runs: {_some(ids)})")


def _key(cell: dict[str, Any]) -> CellKey:
    return (cell["model"], cell["route"], cell["device"], cell["precision"])


def _some(ids: list[str], n: int = 5) -> str:
    shown = ", ".join(ids[:n])
    return shown + (f", ... {len(ids) - n} more" if len(ids) > n else "")
