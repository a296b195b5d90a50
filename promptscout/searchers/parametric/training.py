"""Training a PEFT adapter on the prompt-learning loss, one epoch at a time.

The loss is the class-normalised cross-entropy of the gold label words,
``L = -log softmax_c(sum of log P(word_c tokens | prompt, x))[gold]``, differentiated through
PEFT's own forward of a float32 copy of the campaign's model (the campaign's model is never
modified; only the adapter's parameters get gradients). Rows are the ones scoring builds
(:meth:`CausalLM._label_rows`), so the trained adapter reads exactly what it is scored on.

Virtual tokens start where the ``init`` option says (:mod:`promptscout.searchers.virtual_tokens`):
prompt tuning and P-tuning's encoder input at the embeddings of ``init_text``'s tokens; prefix
tuning at the keys and values the model itself computes for those tokens (random keys and
values start far from anything the layers have seen, and train badly from 32 examples).

Everything the searcher saves crosses this module's boundary as plain NumPy.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from promptscout.adapters import adapter_bundle
from promptscout.errors import PromptscoutError
from promptscout.model.hf import pad_rows
from promptscout.searchers.parametric.config import PeftSearcherConfig
from promptscout.searchers.virtual_tokens import init_ids, init_prefix
from promptscout.soft_tensors import pack_array, unpack_array

# LoRA's default targets: every linear layer but the output head (PEFT's own shorthand).
ALL_LINEAR = "all-linear"
# Methods whose virtual tokens are prepended to the input (PEFT's logits then cover them too).
_PREPENDED = ("prompt_tuning", "p_tuning")


@contextlib.contextmanager
def quiet_peft() -> Iterator[None]:
    """PEFT hands transformers 5 arguments it deprecates (``past_key_values``, gradient
    checkpointing flags): their FutureWarnings say nothing a user can act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def peft_config(options: PeftSearcherConfig) -> Any:
    """The PEFT config of the searcher's options (a ``peft.PeftConfig``)."""
    from peft import LoraConfig, PrefixTuningConfig, PromptEncoderConfig, PromptTuningConfig

    n = options.virtual_tokens
    if options.method == "prompt_tuning":
        return PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=n)
    if options.method == "prefix_tuning":
        return PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=n)
    if options.method == "p_tuning":
        return PromptEncoderConfig(
            task_type="CAUSAL_LM",
            num_virtual_tokens=n,
            encoder_hidden_size=options.encoder_hidden_size,
            encoder_dropout=options.dropout,
        )
    return LoraConfig(
        task_type="CAUSAL_LM",
        r=options.rank,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules=list(options.target_modules) or ALL_LINEAR,
    )


def saved_config(config: Any, base_name: str) -> dict[str, Any]:
    """A PEFT config as ``adapter_config.json`` holds it, in its inference form."""
    data = config.to_dict()
    data.pop("runtime_config", None)  # PEFT does not save it either
    data.update(inference_mode=True, base_model_name_or_path=base_name)
    data = {k: sorted(v) if isinstance(v, set) else v for k, v in data.items()}
    return json.loads(json.dumps(data, default=str))


class AdapterTrainer:
    """AdamW on a PEFT adapter of a copy of the model, one epoch at a time.

    Args:
        model: the campaign's causal LM (:class:`~promptscout.model.causal.CausalLM`).
        options: the searcher's options (method, its shape, the optimiser's settings).
        texts: rendered training texts (the template filled with each example).
        labels: gold class index of each text.
        label_words: one word per class.
        seed: the searcher's seed (virtual tokens' start; each epoch's order and dropout).

    Raises:
        PromptscoutError: PEFT refuses the method or its options for this model (e.g.
            ``target_modules`` that match no module).
    """

    def __init__(
        self,
        model: Any,
        options: PeftSearcherConfig,
        texts: Sequence[str],
        labels: Sequence[int],
        label_words: Sequence[str],
        seed: int,
    ) -> None:
        from peft import get_peft_model

        self.model, self.options, self.seed = model, options, seed
        self.texts, self.labels, self.words = list(texts), list(labels), list(label_words)
        config = peft_config(options)
        base = copy.deepcopy(model.hf_model).float()  # trained in float32 whatever the model
        try:
            # PEFT draws LoRA's A and the encoders' weights from torch's global generator:
            # seeded here, the same searcher seed trains the same adapter in any process.
            with quiet_peft(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.net = get_peft_model(base, config)
        except (ValueError, TypeError, NotImplementedError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PromptscoutError(
                f"PEFT refuses method {options.method!r} on model '{model.name}': {first}"
            ) from None
        self.config = saved_config(self.net.peft_config["default"], model.name)
        self.virtual = 0 if options.method == "lora" else options.virtual_tokens
        self.shift = self.virtual if options.method in _PREPENDED else 0
        self._init_virtual()
        forward = inspect.signature(self.net.get_base_model().forward).parameters
        self.keep_logits = "logits_to_keep" in forward
        self.params = {n: p for n, p in self.net.named_parameters() if p.requires_grad}
        self.anchor = {n: p.detach().clone() for n, p in self.params.items()}
        self.optimizer = torch.optim.AdamW(
            list(self.params.values()), lr=options.step_size, weight_decay=options.weight_decay
        )

    # -- the start ------------------------------------------------------------------------------

    def _init_virtual(self) -> None:
        """Virtual tokens start at ``init`` (PEFT's own start is N(0, 1) noise: far from the
        scale of real embeddings and keys)."""
        o = self.options
        if o.method == "lora":
            return
        embedding = self.net.prompt_encoder["default"].embedding.weight
        if o.method == "prefix_tuning":
            start = self._prefix_start()
        else:
            start = init_prefix(self.model, self.virtual, o.init, o.init_text, self.seed)
        with torch.no_grad():
            embedding.copy_(torch.from_numpy(start).to(embedding))

    def _prefix_start(self) -> np.ndarray:
        """Prefix tuning's start: the keys and values of the init tokens, as the model computes
        them, in PEFT's layout ``[n, layers * 2 * kv_heads * head_dim]``."""
        o = self.options
        if o.init == "random":
            # Noise of the scale of real keys and values (those of common tokens).
            real = self._kv_of(init_ids(self.model, self.virtual, "vocab", "", self.seed))
            rng = np.random.default_rng(self.seed)
            return rng.normal(0.0, float(real.std()), size=real.shape).astype(np.float32)
        return self._kv_of(init_ids(self.model, self.virtual, o.init, o.init_text, self.seed))

    def _kv_of(self, ids: list[int]) -> np.ndarray:
        from promptscout.model.hf import cache_argument, cache_tensors, new_cache

        base = self.net.get_base_model()
        cache = new_cache([])
        with torch.no_grad():
            ids_t = torch.tensor([ids], device=self.model.device)
            base(input_ids=ids_t, use_cache=True, **{cache_argument(base): cache})
        keys, values = cache_tensors(cache)
        kv = torch.stack([torch.stack([k[0], v[0]]) for k, v in zip(keys, values, strict=True)])
        n = kv.shape[3]  # kv: [layers, 2, kv_heads, n, head_dim] -> PEFT's [n, ...]
        return kv.permute(3, 0, 1, 2, 4).reshape(n, -1).float().cpu().numpy().copy()

    # -- training -------------------------------------------------------------------------------

    def loss(self, indices: Sequence[int]) -> torch.Tensor:
        """Mean class-normalised cross-entropy of the gold label words on ``indices``."""
        texts = [self.texts[i] for i in indices]
        rows, picks = self.model._label_rows(texts, self.words, reserve=self.virtual)
        dev = self.model.device
        # Not the model's own _pad: training tokens are not the campaign's scoring tokens.
        ids, mask = pad_rows(rows, self.model.pad_id, dev)
        # The vocabulary-sized head runs only where a label token is read (most of a step's
        # cost otherwise, forward and backward), when the model's forward can be told so.
        read = sorted({pos + self.shift for row in picks for pos, *_ in row})
        column = {pos: k for k, pos in enumerate(read)} if self.keep_logits else None
        kwargs = {"logits_to_keep": torch.tensor(read, device=dev)} if column else {}
        with quiet_peft():
            logits = self.net(input_ids=ids, attention_mask=mask, **kwargs).logits
        where, tok, ti, ci = [], [], [], []
        for b, row_picks in enumerate(picks):
            for pos, token, i, c in row_picks:
                at_pos = pos + self.shift
                where.append((b, column[at_pos] if column else at_pos))
                tok.append(token)
                ti.append(i)
                ci.append(c)
        at = torch.tensor(where, dtype=torch.long, device=dev)
        logp = torch.log_softmax(logits[at[:, 0], at[:, 1]].float(), dim=-1)
        values = logp[torch.arange(len(tok), device=dev), torch.tensor(tok, device=dev)]
        scores = torch.zeros((len(texts), len(self.words)), device=dev).index_put(
            (torch.tensor(ti, device=dev), torch.tensor(ci, device=dev)), values, accumulate=True
        )
        gold = torch.tensor([self.labels[i] for i in indices], device=dev)
        return torch.nn.functional.cross_entropy(scores, gold)

    def epoch(self, epoch: int, texts: Sequence[str] | None = None) -> float:
        """One pass over the training texts in the epoch's seeded order; the mean loss.

        ``texts``, when given, are this epoch's renderings of the same examples (demonstrations
        drawn afresh), in the same order. The order and dropout depend only on the seed and the
        epoch, so a run resumed from a checkpoint trains exactly as an uninterrupted one.
        """
        o = self.options
        if texts is not None:
            if len(texts) != len(self.labels):
                raise ValueError(f"{len(texts)} texts for {len(self.labels)} training labels")
            self.texts = list(texts)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch]))
        order = [int(i) for i in rng.permutation(len(self.texts))]
        torch.manual_seed(int(np.random.SeedSequence([self.seed, epoch, 1]).generate_state(1)[0]))
        steps = [order[s : s + o.train_batch] for s in range(0, len(order), o.train_batch)]
        self.net.train()
        losses = []
        try:
            self.optimizer.zero_grad()
            for k, indices in enumerate(steps):
                with torch.enable_grad():
                    loss = self.loss(indices)
                    total = loss + o.l2 * self._distance() if o.l2 else loss
                    (total / o.accumulate).backward()
                losses.append(float(loss.detach()))
                if (k + 1) % o.accumulate == 0 or k + 1 == len(steps):
                    self.optimizer.step()
                    self.optimizer.zero_grad()
        finally:
            self.net.eval()
        return float(np.mean(losses)) if losses else float("nan")

    def _distance(self) -> torch.Tensor:
        """Squared distance of the trained tensors from their start (the ``l2`` pull)."""
        return sum(((p - self.anchor[n]) ** 2).sum() for n, p in self.params.items())

    # -- what leaves the trainer ----------------------------------------------------------------

    def bundle(self) -> dict[str, np.ndarray]:
        """The adapter as it stands, in its inference form (:mod:`promptscout.adapters`)."""
        from peft import get_peft_model_state_dict

        with torch.no_grad():
            weights = get_peft_model_state_dict(self.net)
        return adapter_bundle(self.config, weights)

    def checkpoint(self) -> dict[str, Any]:
        """The trained parameters and the optimiser's state as JSON-ready data."""
        state = self.optimizer.state_dict()
        return {
            "params": {n: pack_array(p.detach().cpu().numpy()) for n, p in self.params.items()},
            "anchor": {n: pack_array(p.cpu().numpy()) for n, p in self.anchor.items()},
            "optimizer": {
                str(i): {k: pack_array(np.asarray(v.cpu())) for k, v in entry.items()}
                for i, entry in state["state"].items()
            },
        }

    def load_checkpoint(self, data: dict[str, Any]) -> None:
        """Continue from what :meth:`checkpoint` returned."""
        dev = self.model.device
        with torch.no_grad():
            for name, packed in data["params"].items():
                self.params[name].copy_(torch.from_numpy(unpack_array(packed)))
        self.anchor = {
            n: torch.from_numpy(unpack_array(p)).to(dev) for n, p in data["anchor"].items()
        }
        state = self.optimizer.state_dict()
        state["state"] = {
            int(i): {
                k: torch.from_numpy(unpack_array(v)).reshape(())
                if k == "step"
                else torch.from_numpy(unpack_array(v)).to(dev)
                for k, v in entry.items()
            }
            for i, entry in data["optimizer"].items()
        }
        self.optimizer.load_state_dict(state)
