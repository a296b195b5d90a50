"""The ``promptscout`` command line.

Every input problem ends as one ``error: ...`` line on stderr and exit status 2; ``--json``
outputs are one JSON object on stdout, with progress and notes on stderr. One module per group
of commands: :mod:`.run` (run, resume), :mod:`.init`, :mod:`.evaluate`, :mod:`.reading`
(leaderboard, export, report, plugins); :mod:`.output` is how they speak.
"""

from __future__ import annotations

import argparse
import sys

from promptscout.cli.evaluate import cmd_evaluate
from promptscout.cli.init import add_init_parser
from promptscout.cli.output import EXIT_INTERRUPTED, EXIT_USAGE
from promptscout.cli.reading import cmd_export, cmd_leaderboard, cmd_plugins, cmd_report
from promptscout.cli.run import cmd_resume, cmd_run
from promptscout.errors import PromptscoutError
from promptscout.model import DTYPES, EMBEDDED_MODEL_NAME

__all__ = ["EXIT_INTERRUPTED", "EXIT_USAGE", "build_parser", "main"]


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
    run.add_argument(
        "--estimate",
        action="store_true",
        help="print the projected examples, minutes, requests, tokens and dollars; score nothing",
    )
    run.add_argument("--json", action="store_true", help="with --estimate: one JSON object")
    run.set_defaults(func=cmd_run)

    resume = sub.add_parser("resume", help="continue a stopped or killed campaign")
    resume.add_argument("store")
    resume.add_argument("--top", type=int, default=10, help="leaderboard rows to print")
    resume.set_defaults(func=cmd_resume)

    add_init_parser(sub)

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
    ev.add_argument("--base-url", help="a served model's OpenAI-compatible API (--model openai:ID)")
    ev.add_argument(
        "--scoring", choices=["echo", "top_logprobs", "generate"], help="served: label scoring"
    )
    ev.add_argument("--chat", action="store_true", help="render the prompt as chat messages")
    ev.add_argument("--api-key-env", help="served: the environment variable holding the API key")
    ev.add_argument("--concurrency", type=int, help="served: requests in flight (default 8)")
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
