"""The ``promptscout`` command line.

Every input problem ends as one ``error: ...`` line on stderr and exit status 2; ``--json``
outputs are one JSON object on stdout, with progress and notes on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from promptscout.errors import PromptscoutError
from promptscout.model import DTYPES, EMBEDDED_MODEL_NAME

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- run / resume ---------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from promptscout.config import load_config
    from promptscout.store import Store

    config = load_config(args.campaign)
    if args.store:
        config.store = args.store
    if args.budget is not None:
        if args.budget < 1:
            raise PromptscoutError(
                f"--budget must be a positive number of examples, got {args.budget}"
            )
        config.budget.examples = args.budget
    if args.seed is not None:
        config.seed = args.seed
    path = config.store_path
    if path.exists():
        with Store(path, readonly=True) as existing:
            if existing.meta.config is not None:
                raise PromptscoutError(
                    f"store {path} already holds campaign '{existing.meta.config['name']}'; "
                    f"continue it with `promptscout resume {path}` or pass a new --store"
                )
    return _run_campaign(config, Store(path), args.top)


def cmd_resume(args: argparse.Namespace) -> int:
    from promptscout.config import CampaignConfig
    from promptscout.store import Store

    store = Store(args.store)
    data = store.meta.config
    if data is None:
        store.close()
        raise PromptscoutError(
            f"store {args.store} holds no campaign; start one with `promptscout run`"
        )
    config = CampaignConfig.from_dict(data)
    config.store = str(args.store)
    return _run_campaign(config, store, args.top)


def _run_campaign(config: Any, store: Any, top: int) -> int:
    from promptscout.campaign import Campaign
    from promptscout.leaderboard import format_table

    campaign = None
    try:
        campaign = Campaign(config, store)
        n = len(campaign.search_ids)
        _note(
            f"campaign '{config.name}': task {campaign.task.name} ({n} {campaign.search_split} "
            f"examples per candidate), {len(campaign.searchers)} searcher(s), store {store.path}"
        )
        started = time.time()
        result = campaign.run()
        _note(
            f"stopped: {result.stop_reason}; {result.examples_scored} examples scored, "
            f"{result.evaluations} evaluations stored, {time.time() - started:.0f} s"
        )
        print(format_table(result.leaderboard[:top], config.objective.names))
        _note(f"export: {config.export_path}")
        return 0
    except KeyboardInterrupt:
        _note(
            f"interrupted; every finished evaluation is stored. Continue with: "
            f"promptscout resume {store.path}"
        )
        return EXIT_INTERRUPTED
    finally:
        if campaign is not None:
            campaign.close()
        store.close()


# -- evaluate -------------------------------------------------------------------------------


def _unescape(text: str) -> str:
    """Shell-typed ``\\n``, ``\\t`` and ``\\\\`` become newline, tab and backslash."""
    table = {"n": "\n", "t": "\t", "\\": "\\"}
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in table:
            out.append(table[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from promptscout.evaluate import default_objectives, evaluate_prompt, read_export
    from promptscout.model import load_model
    from promptscout.prompts import Prompt
    from promptscout.soft_tensors import load_export_tensors
    from promptscout.tasks import load_task

    exported: dict[str, Any] = {}
    if args.prompt:
        prompt, exported = read_export(args.prompt, args.rank)
    elif args.template is None:
        raise PromptscoutError(
            "give --template TEXT (e.g. 'Review: {text}\\nSentiment:') or --prompt FILE"
        )
    task_spec = args.task or exported.get("task", {}).get("spec")
    if not task_spec:
        raise PromptscoutError("give --task (a bundled name such as sst-2, or a folder)")
    split_seed = args.split_seed
    if split_seed is None:
        split_seed = exported.get("task", {}).get("split_seed", 42)
    task = load_task(task_spec, seed=split_seed)
    if not args.prompt:
        words = (
            tuple(w.strip() for w in args.label_words.split(","))
            if args.label_words
            else (task.label_words)
        )
        template = _unescape(args.template) if args.escapes else args.template
        prompt = Prompt(template, words, instruction=args.instruction or "")
    prompt.check_task(task)
    names = args.objective or default_objectives(task)
    model_name = args.model or exported.get("model", {}).get("name") or EMBEDDED_MODEL_NAME
    model = load_model(model_name, dtype=args.dtype, device=args.device, batch_size=args.batch_size)
    # Soft prompts' tensors come from the .soft.safetensors file the export names.
    resolver = load_export_tensors(args.prompt, exported) if args.prompt else None
    members = len(getattr(prompt, "members", ())) or 1
    with tqdm(
        total=len(task.split(args.split)) * members,
        unit="ex",
        desc=args.split,
        file=sys.stderr,
        disable=args.quiet,
        dynamic_ncols=True,
    ) as bar:
        result = evaluate_prompt(
            prompt,
            task,
            model,
            split=args.split,
            objectives=names,
            soft_resolver=resolver,
            progress=bar.update,
        )
    recorded = exported.get("model", {}).get("fingerprint")
    if exported and recorded not in (None, model.fingerprint):
        _note("note: the export was made with a different model fingerprint")
    if args.json:
        _print_json(result)
    else:
        for name in names:
            print(f"{name}: {result[name]:.4f}")
        print(f"examples: {result['examples']}  seconds: {result['seconds']:.1f}")
    return 0


# -- reading a store ------------------------------------------------------------------------


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from promptscout.leaderboard import build_leaderboard, format_table
    from promptscout.store import Store

    with Store(args.store, readonly=True) as store:
        config = store.meta.config
        if config is None:
            raise PromptscoutError(f"store {args.store} holds no campaign")
        entries = build_leaderboard(store, split=args.split, top=args.top)
        if args.json:
            _print_json({"split": args.split, "entries": [e.to_dict() for e in entries]})
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
            _note(f"wrote {path}")
        else:
            from promptscout.soft_tensors import soft_digests

            payload = export_payload(store, build_leaderboard(store, top=args.top))
            if soft_digests(payload):
                _note("note: soft prompts' vectors are written only with -o FILE (beside it)")
            _print_json(payload)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from promptscout.report import write_report
    from promptscout.store import Store

    with Store(args.store, readonly=True) as store:
        if store.meta.config is None:
            raise PromptscoutError(f"store {args.store} holds no campaign")
        path = write_report(store, Path(args.output))
    _note(f"wrote {path}")
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
            _note(f"wrote the options reference into {args.markdown}")
        else:
            print(options_reference(), end="")
        return 0
    if args.options:
        _print_options(args.options)
        return 0
    data = catalog(note=_note)
    if args.json:
        _print_json(data)
    else:
        print("searchers:  " + ", ".join(data["searchers"]))
        print("objectives: " + ", ".join(data["objectives"]) + "  (or module:function)")
        print("models:")
        for name, about in data["models"].items():
            print(f"  {name}: {about}")
        print("options of a searcher or table: promptscout plugins --options TYPE (e.g. random)")
    return 0


# -- argument parsing -----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promptscout", description="Automated prompt search on language models."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a campaign from a TOML file")
    run.add_argument("campaign", help="campaign file (TOML)")
    run.add_argument(
        "--store", help="SQLite store path (default: [campaign] store or runs/<name>.db)"
    )
    run.add_argument("--budget", type=int, help="examples to score on the search split")
    run.add_argument("--seed", type=int, help="campaign seed")
    run.add_argument("--top", type=int, default=10, help="leaderboard rows to print")
    run.set_defaults(func=cmd_run)

    resume = sub.add_parser("resume", help="continue a stopped or killed campaign")
    resume.add_argument("store")
    resume.add_argument("--top", type=int, default=10, help="leaderboard rows to print")
    resume.set_defaults(func=cmd_resume)

    ev = sub.add_parser("evaluate", help="score one prompt on a task split")
    ev.add_argument("--task", help="bundled task name (sst-2, mr, ...) or a folder")
    ev.add_argument("--template", help="template with {field} placeholders; \\n means newline")
    ev.add_argument("--label-words", help="comma-separated, one per class")
    ev.add_argument("--instruction", help="instruction placed before the template")
    ev.add_argument("--prompt", help="an export JSON file (from `promptscout export`)")
    ev.add_argument("--rank", type=int, default=1, help="which entry of --prompt (default 1)")
    ev.add_argument("--split", default="test", choices=["train", "dev", "test"])
    ev.add_argument(
        "--split-seed", type=int, help="few-shot split seed of bundled tasks (default 42)"
    )
    ev.add_argument("--model", help=f"model name or folder (default: {EMBEDDED_MODEL_NAME})")
    ev.add_argument("--objective", action="append", help="objective(s) to report (repeatable)")
    ev.add_argument("--dtype", default=DTYPES[0], choices=DTYPES)
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--batch-size", type=int, default=16)
    ev.add_argument(
        "--no-escapes",
        dest="escapes",
        action="store_false",
        help="take --template literally (by default \\n and \\t are unescaped)",
    )
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=cmd_evaluate)

    lb = sub.add_parser("leaderboard", help="rank the candidates of a store")
    lb.add_argument("store")
    lb.add_argument("--top", type=int, help="rows to show")
    lb.add_argument("--split", default="dev", choices=["dev", "test"])
    lb.add_argument("--json", action="store_true")
    lb.set_defaults(func=cmd_leaderboard)

    ex = sub.add_parser("export", help="write the best prompts as JSON")
    ex.add_argument("store")
    ex.add_argument("--top", type=int, help="entries to export (default all ranked)")
    ex.add_argument("-o", "--output", help="file to write (default: stdout)")
    ex.set_defaults(func=cmd_export)

    rep = sub.add_parser("report", help="write an HTML report of a store")
    rep.add_argument("store")
    rep.add_argument("-o", "--output", required=True, help="HTML file to write")
    rep.set_defaults(func=cmd_report)

    plugins = sub.add_parser("plugins", help="list searchers, objectives, models and options")
    plugins.add_argument(
        "--json", action="store_true", help="one JSON object, with every table's options"
    )
    plugins.add_argument(
        "--options",
        metavar="TYPE",
        help="print the options of a searcher type (e.g. random) or a table (e.g. budget)",
    )
    plugins.add_argument(
        "--markdown",
        nargs="?",
        const="",
        metavar="FILE",
        help="print the options reference as Markdown, or rewrite its block in FILE",
    )
    plugins.set_defaults(func=cmd_plugins)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except PromptscoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
