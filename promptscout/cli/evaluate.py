"""``promptscout evaluate``: one prompt, or an exported row, scored on a task split."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from promptscout.cli.output import note, print_json
from promptscout.errors import PromptscoutError
from promptscout.model import EMBEDDED_MODEL_NAME

if TYPE_CHECKING:
    from promptscout.tasks import Task


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


def _evaluate_model(args: argparse.Namespace, name: str, exported: dict[str, Any]) -> Any:
    """The model ``evaluate`` scores with: the flags' (a served one with --base-url), or the
    export's; an export of a served model keeps its server settings unless flags override."""
    from promptscout.builders import load_configured_model
    from promptscout.options import OptionError
    from promptscout.sections import SERVER_OPTIONS, ModelConfig

    stored = exported.get("model", {})
    served = {k: stored[k] for k in SERVER_OPTIONS if stored.get(k) is not None}
    given = {
        "base_url": args.base_url,
        "scoring": args.scoring,
        "api_key_env": args.api_key_env,
        "concurrency": args.concurrency,
        "chat": True if args.chat else None,
    }
    options = {**served, **{k: v for k, v in given.items() if v is not None}}
    try:
        table = ModelConfig(
            name=name, dtype=args.dtype, device=args.device, batch_size=args.batch_size, **options
        )
    except OptionError as exc:
        flag = {"base_url": "--base-url", "name": "--model"}.get(exc.key or "", f"--{exc.key}")
        raise PromptscoutError(f"{flag}: {exc.problem}") from None
    return load_configured_model(table)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from promptscout.evaluate import default_objectives, evaluate_prompt, read_export
    from promptscout.prompts import Prompt
    from promptscout.soft_tensors import load_export_tensors

    exported: dict[str, Any] = {}
    if args.prompt:
        prompt, exported = read_export(args.prompt, args.rank)
    elif args.template is None:
        raise PromptscoutError(
            "give --template TEXT (e.g. 'Review: {text}\\nSentiment:') or --prompt FILE"
        )
    task = _task(args, exported.get("task", {}))
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
    model = _evaluate_model(args, model_name, exported)
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
        note("note: the export was made with a different model fingerprint")
    if args.json:
        print_json(result)
    else:
        for name in names:
            print(f"{name}: {result[name]:.4f}")
        print(f"examples: {result['examples']}  seconds: {result['seconds']:.1f}")
    return 0


def _task(args: argparse.Namespace, exported: dict[str, Any]) -> Task:
    """``--task``, or the export's campaign task (its whole ``[task]`` table where the export
    has it: a dataset, a folder's kind and classes); ``--split-seed`` overrides the seed."""
    from promptscout.sections import TaskConfig
    from promptscout.tasks import load_task

    if not args.task and exported.get("table"):
        table = TaskConfig.from_stored(exported["table"])
        if args.split_seed is not None:
            table.split_seed = args.split_seed
        return table.load()
    spec = args.task or exported.get("spec")
    if not spec:
        raise PromptscoutError("give --task (a bundled name such as sst-2, or a folder)")
    seed = args.split_seed if args.split_seed is not None else exported.get("split_seed", 42)
    return load_task(spec, seed=seed)
