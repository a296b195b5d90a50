"""The campaign store's tables (:mod:`promptscout.store`): what a store file holds, and the
version a store records so that a newer store is refused rather than misread.

- ``meta``: the campaign's config and facts (see :mod:`promptscout.meta`), JSON by key;
- ``prompts``: every proposed prompt, by key, with the searcher that proposed it first;
- ``evaluations``: every evaluation (one row per prompt, split and example set scored), with
  its record as JSON and its cost (examples, tokens, seconds);
- ``searcher_states``: each searcher's saved state (resume rebuilds the searcher from it);
- ``score_cache``: model outputs by prompt variant and example (never scored twice);
- ``runs``: each start of the campaign (first run and resumes) and how it ended;
- ``soft_tensors``: soft prompts' tensors by digest (created on first use by the store).
"""

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS prompts (
    key TEXT PRIMARY KEY,
    prompt TEXT NOT NULL,
    searcher TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY,
    prompt_key TEXT NOT NULL REFERENCES prompts(key),
    searcher TEXT NOT NULL,
    split TEXT NOT NULL,
    example_set TEXT NOT NULL,
    record TEXT NOT NULL,
    examples INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    seconds REAL NOT NULL,
    error TEXT,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS evaluations_by_prompt ON evaluations (prompt_key, split, example_set);
CREATE TABLE IF NOT EXISTS searcher_states (
    searcher TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS score_cache (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL
);
"""
