"""The commands that read a store (``leaderboard``, ``export``, ``report``) and
``plugins``."""

from __future__ import annotations

import argparse
from pathlib import Path

from promptscout.cli.output import note, print_json
from promptscout.errors import PromptscoutError


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from promptscout.leaderboard import build_leaderboard, format_table
    from promptscout.store import Store

    with Store(args.store, readonly=True) as store:
        config = store.meta.config
        if config is None:
            raise PromptscoutError(f"store {args.store} holds no campaign")
        entries = build_leaderboard(store, split=args.split, top=args.top)
        if args.json:
            print_json({"split": args.split, "entries": [e.to_dict() for e in entries]})
        else:
            print(format_table(entries, config["objective"]["names"]))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from promptscout.builders import write_export
    from promptscout.leaderboard import build_leaderboard, export_payload
    from promptscout.store import Store

    with Store(args.store, readonly=True) as store:
        if store.meta.config is None:
            raise PromptscoutError(f"store {args.store} holds no campaign")
        if args.output:
            path = write_export(store, Path(args.output), args.top)
            note(f"wrote {path}")
        else:
            from promptscout.soft_tensors import soft_digests

            payload = export_payload(store, build_leaderboard(store, top=args.top))
            if soft_digests(payload):
                note("note: soft prompts' vectors are written only with -o FILE (beside it)")
            print_json(payload)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from promptscout.report import write_report
    from promptscout.store import Store

    with Store(args.store, readonly=True) as store:
        if store.meta.config is None:
            raise PromptscoutError(f"store {args.store} holds no campaign")
        path = write_report(store, Path(args.output))
    note(f"wrote {path}")
    return 0


def _print_options(name: str) -> None:
    from promptscout.catalog import heading, option_tables
    from promptscout.options import describe_options, toml_value

    tables = option_tables(plugins=True)
    group = next((g for g, t in tables.items() if name in t), None)
    if group is None:
        known = ", ".join([*tables["sections"], *tables["searchers"]])
        raise PromptscoutError(f"no options table '{name}'; known: {known}")
    rows = [("option", "type", "default", "what it does")]
    for d in describe_options(tables[group][name]):
        default = "required" if d["required"] else toml_value(d["default"])
        default = default if len(default) <= 24 else default[:21] + "..."
        rows.append((d["name"], d["type"], default, d["help"]))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print(heading(group, name))
    for row in rows:
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)]
        print("  " + "  ".join([*cells, row[3]]))


def cmd_plugins(args: argparse.Namespace) -> int:
    from promptscout.catalog import catalog, options_reference, write_reference

    if args.markdown is not None:
        if args.markdown:
            write_reference(Path(args.markdown))
            note(f"wrote the options reference into {args.markdown}")
        else:
            print(options_reference(), end="")
        return 0
    if args.options:
        _print_options(args.options)
        return 0
    data = catalog(note=note)
    if args.json:
        print_json(data)
    else:
        print("searchers:  " + ", ".join(data["searchers"]))
        print("objectives: " + ", ".join(data["objectives"]) + "  (or module:function)")
        print("models:")
        for name, about in data["models"].items():
            print(f"  {name}: {about}")
        print("options of a searcher or table: promptscout plugins --options TYPE (e.g. random)")
    return 0
