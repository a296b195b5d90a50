"""The campaign store: one SQLite file, the single source of truth of a campaign.

Everything a campaign learns is committed as it arrives (WAL mode, one transaction per
evaluation), so a killed campaign loses at most the evaluation in flight. Searcher states are
saved after every ``tell``; the campaign config is saved at creation, so ``resume`` needs only the
store. One process writes at a time: a writer holds an exclusive lock on ``<store>.lock``;
readers (leaderboard, export, report) never take it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptscout.errors import PromptscoutError
from promptscout.evaluation.base import Evaluation
from promptscout.meta import CampaignMeta
from promptscout.prompts import Prompt
from promptscout.store_schema import SCHEMA, SCHEMA_VERSION


def example_set_id(example_ids: Sequence[str]) -> str:
    """A short id of an ordered example list, to find evaluations of the same examples."""
    return hashlib.sha1("\n".join(example_ids).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class StoredEvaluation:
    """An evaluation as stored, with who asked for it and when."""

    id: int
    searcher: str
    evaluation: Evaluation
    created: float


class Store:
    """A campaign's SQLite file.

    Args:
        path: The database file.
        readonly: Open for reading only (no lock, no writes).
    """

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._lock_file: Any = None
        self._db: sqlite3.Connection | None = None
        if readonly and not self.path.exists():
            raise PromptscoutError(f"store {self.path} does not exist; run a campaign first")
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._acquire_lock()
        try:
            if readonly:
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            else:
                self._db = sqlite3.connect(self.path, isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                # WAL with synchronous=NORMAL never corrupts; a killed process loses nothing
                # committed (only a power cut can drop the last commits).
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._check_schema()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise PromptscoutError(f"{self.path} is not a promptscout store ({exc})") from None

    def _acquire_lock(self) -> None:
        lock_path = self.files(self.path)[-1]
        self._lock_file = open(lock_path, "a+")  # noqa: SIM115 - held for the store's lifetime
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            raise PromptscoutError(
                f"store {self.path} is in use by another promptscout process; wait for it to "
                "finish or stop it first"
            ) from None

    def _check_schema(self) -> None:
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        if "meta" in tables:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise PromptscoutError(
                    f"store {self.path} has schema version {version}, newer than this "
                    f"promptscout's {SCHEMA_VERSION}; upgrade promptscout to read it"
                )
        elif self.readonly:
            raise PromptscoutError(f"{self.path} is not a promptscout store (no meta table)")
        else:
            self._db.executescript(SCHEMA)
            self._db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    @staticmethod
    def files(path: str | Path) -> list[Path]:
        """The files a store at ``path`` may have: the database, SQLite's -wal and -shm, the
        writer lock."""
        path = Path(path)
        return [path, *(path.with_name(path.name + end) for end in ("-wal", "-shm", ".lock"))]

    def close(self) -> None:
        """Close the database and release the writer lock."""
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata ---------------------------------------------------------------------------

    @property
    def meta(self) -> CampaignMeta:
        """Typed access to the campaign's meta entries (:mod:`promptscout.meta`)."""
        return CampaignMeta(self)

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value, sort_keys=True))
        )

    # -- prompts and evaluations ------------------------------------------------------------

    def add_evaluation(self, prompt: Prompt, searcher: str, evaluation: Evaluation) -> int:
        """Commit one evaluation (and its prompt, if new); returns the evaluation's row id."""
        now = time.time()
        with self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO prompts VALUES (?, ?, ?, ?)",
                (prompt.key, json.dumps(prompt.to_dict()), searcher, now),
            )
            cursor = self._db.execute(
                "INSERT INTO evaluations (prompt_key, searcher, split, example_set, record, "
                "examples, tokens, seconds, error, created) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    evaluation.prompt_key,
                    searcher,
                    evaluation.split,
                    example_set_id(evaluation.example_ids),
                    json.dumps(evaluation.to_dict()),
                    evaluation.examples,
                    evaluation.tokens,
                    evaluation.seconds,
                    evaluation.error,
                    now,
                ),
            )
        return int(cursor.lastrowid or 0)

    def find_evaluation(
        self, prompt_key: str, split: str, example_ids: Sequence[str]
    ) -> Evaluation | None:
        """The latest stored evaluation of a prompt on exactly these examples, if any."""
        row = self._db.execute(
            "SELECT record FROM evaluations WHERE prompt_key=? AND split=? AND example_set=? "
            "ORDER BY id DESC LIMIT 1",
            (prompt_key, split, example_set_id(example_ids)),
        ).fetchone()
        return Evaluation.from_dict(json.loads(row[0])) if row else None

    def evaluations(
        self, split: str | None = None, example_ids: Sequence[str] | None = None
    ) -> Iterator[StoredEvaluation]:
        """Stored evaluations in commit order, optionally of one split and example list."""
        query = "SELECT id, searcher, record, created FROM evaluations"
        clauses, args = [], []
        if split is not None:
            clauses.append("split=?")
            args.append(split)
        if example_ids is not None:
            clauses.append("example_set=?")
            args.append(example_set_id(example_ids))
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        for row in self._db.execute(query + " ORDER BY id", args):
            yield StoredEvaluation(row[0], row[1], Evaluation.from_dict(json.loads(row[2])), row[3])

    def prompts(self) -> dict[str, tuple[Prompt, str]]:
        """Every stored prompt by key, with the searcher that first proposed it."""
        rows = self._db.execute("SELECT key, prompt, searcher FROM prompts ORDER BY created")
        return {key: (Prompt.from_dict(json.loads(p)), s) for key, p, s in rows}

    def prompt(self, key: str) -> tuple[Prompt, str] | None:
        """One stored prompt and the searcher that first proposed it (None: not stored); the
        campaign looks one up every turn, where :meth:`prompts` would read them all."""
        row = self._db.execute(
            "SELECT prompt, searcher FROM prompts WHERE key=?", (key,)
        ).fetchone()
        return (Prompt.from_dict(json.loads(row[0])), row[1]) if row else None

    def count_prompts(self, split: str) -> int:
        """Distinct prompts with at least one evaluation on ``split``."""
        row = self._db.execute(
            "SELECT COUNT(DISTINCT prompt_key) FROM evaluations WHERE split=?", (split,)
        ).fetchone()
        return int(row[0])

    def count_evaluations(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])

    def examples_by_prompt(self) -> dict[str, int]:
        """Examples scored per prompt key over all splits: what each candidate cost."""
        rows = self._db.execute(
            "SELECT prompt_key, COALESCE(SUM(examples), 0) FROM evaluations GROUP BY prompt_key"
        )
        return {key: int(n) for key, n in rows}

    def scoring_time_by_prompt(self, split: str) -> dict[str, tuple[float, int]]:
        """Per prompt key on ``split``: (seconds, examples) of its timed scoring (outputs taken
        from the score cache, which cost no time and count no examples, left out)."""
        rows = self._db.execute(
            "SELECT prompt_key, SUM(seconds), SUM(examples) FROM evaluations "
            "WHERE split=? AND examples > 0 AND seconds > 0 GROUP BY prompt_key",
            (split,),
        )
        return {key: (float(seconds), int(n)) for key, seconds, n in rows}

    def usage_by_prompt(self) -> dict[str, tuple[int, int]]:
        """Per prompt key over all splits: (prompt tokens, completion tokens) the model read and
        wrote for it (a served model's ``usage``): what it cost."""
        rows = self._db.execute(
            "SELECT prompt_key, COALESCE(SUM(tokens), 0), "
            "COALESCE(SUM(json_extract(record, '$.completion_tokens')), 0) "
            "FROM evaluations GROUP BY prompt_key"
        )
        return {key: (int(read), int(written)) for key, read, written in rows}

    def usage(self) -> tuple[int, int]:
        """(prompt tokens, completion tokens) of every evaluation: the campaign's usage."""
        values = self.usage_by_prompt().values()
        return sum(r for r, _ in values), sum(w for _, w in values)

    def examples_scored(self, split: str, exclude_searcher: str | None = None) -> int:
        """Examples scored on ``split``: the unit of the campaign budget."""
        row = self._db.execute(
            "SELECT COALESCE(SUM(examples), 0) FROM evaluations WHERE split=? AND searcher!=?",
            (split, exclude_searcher or ""),
        ).fetchone()
        return int(row[0])

    def latest_evaluation(self, prompt_key: str, split: str) -> Evaluation | None:
        """The latest stored evaluation of a prompt on any examples of ``split``."""
        row = self._db.execute(
            "SELECT record FROM evaluations WHERE prompt_key=? AND split=? ORDER BY id DESC "
            "LIMIT 1",
            (prompt_key, split),
        ).fetchone()
        return Evaluation.from_dict(json.loads(row[0])) if row else None

    # -- score cache ------------------------------------------------------------------------

    def cached_outputs(self, keys: Sequence[str]) -> dict[str, bytes | str]:
        """Cached model outputs by key (see :mod:`promptscout.evaluation.cache`)."""
        found: dict[str, bytes | str] = {}
        for start in range(0, len(keys), 500):  # stay under SQLite's bound-parameter limit
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for key, value in self._db.execute(
                f"SELECT key, value FROM score_cache WHERE key IN ({marks})", chunk
            ):
                found[key] = value
        return found

    def cache_outputs(self, items: Sequence[tuple[str, bytes | str]]) -> None:
        with self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO score_cache VALUES (?, ?)", items)

    # -- soft-prompt tensors ----------------------------------------------------------------

    # Created on first use (not in SCHEMA), so stores made before soft prompts need no migration.
    _SOFT_TABLE = (
        "CREATE TABLE IF NOT EXISTS soft_tensors "
        "(digest TEXT PRIMARY KEY, data BLOB NOT NULL, created REAL NOT NULL)"
    )

    def put_soft(self, digest: str, tensors: Mapping[str, Any]) -> None:
        """Keep a soft prompt's tensors (:mod:`promptscout.soft_tensors`) under their digest."""
        from promptscout.soft_tensors import encode_tensors, tensors_digest

        if tensors_digest(tensors) != digest:
            raise PromptscoutError(f"soft-prompt tensors do not match their digest {digest}")
        with self._transaction():
            self._db.execute(self._SOFT_TABLE)
            self._db.execute(
                "INSERT OR IGNORE INTO soft_tensors VALUES (?, ?, ?)",
                (digest, encode_tensors(tensors), time.time()),
            )

    def get_soft(self, digest: str) -> dict[str, Any] | None:
        """The tensors stored under ``digest`` (name -> float32 array), or None."""
        from promptscout.soft_tensors import decode_tensors

        row = self._soft_row("data", digest)
        return decode_tensors(row[0]) if row else None

    def has_soft(self, digest: str) -> bool:
        return self._soft_row("1", digest) is not None

    def _soft_row(self, column: str, digest: str) -> tuple[Any, ...] | None:
        try:
            query = f"SELECT {column} FROM soft_tensors WHERE digest=?"
            return self._db.execute(query, (digest,)).fetchone()
        except sqlite3.OperationalError:  # no such table: a store without soft prompts
            return None

    # -- searcher states and runs -----------------------------------------------------------

    def end_turn(self, searcher: str, state: dict[str, Any], meta: dict[str, Any]) -> None:
        """Save a searcher's state and campaign metadata in one transaction."""
        with self._transaction():
            self.save_searcher_state(searcher, state)
            for key, value in meta.items():
                self.set_meta(key, value)

    def save_searcher_state(self, searcher: str, state: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO searcher_states VALUES (?, ?, ?)",
            (searcher, json.dumps(state), time.time()),
        )

    def searcher_state(self, searcher: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT state FROM searcher_states WHERE searcher=?", (searcher,)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def start_run(self) -> int:
        # Runs still marked running were killed: this process holds the writer lock.
        self._db.execute("UPDATE runs SET status='killed' WHERE status='running'")
        cursor = self._db.execute(
            "INSERT INTO runs (started, status) VALUES (?, 'running')", (time.time(),)
        )
        return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, status: str) -> None:
        self._db.execute(
            "UPDATE runs SET finished=?, status=? WHERE id=?", (time.time(), status, run_id)
        )

    def seconds_spent(self) -> float:
        """Wall time of earlier runs; a run killed before finishing counts until its last
        evaluation."""
        runs = self._db.execute("SELECT started, finished FROM runs ORDER BY id").fetchall()
        total = 0.0
        for i, (started, finished) in enumerate(runs):
            if finished is None:
                until = runs[i + 1][0] if i + 1 < len(runs) else time.time()
                last = self._db.execute(
                    "SELECT MAX(created) FROM evaluations WHERE created>=? AND created<?",
                    (started, until),
                ).fetchone()[0]
                finished = last or started
            total += finished - started
        return total

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
