"""A prompt-writing policy: a frozen causal LM with a small trainable head (RLPrompt, Deng et
al. 2022).

The policy writes ``k`` tokens after a fixed context (e.g. ``"Prompt:"``). At each step the
frozen backbone reads the context and the tokens written so far; its last hidden state ``h``
gives the backbone's own logits over a candidate vocabulary, and the head, a two-layer MLP over
``h``, adds a learned logit per candidate::

    logits = prior * (W_out[candidates] @ h) + MLP(h)

The MLP's last layer starts at zero, so the untrained policy is the backbone's next-token
distribution restricted to the candidates (sharpened or flattened by ``prior``: 0 starts
uniform), and training only ever moves the head (the backbone runs under ``inference_mode``; its
weights never receive a gradient). The head writes candidate logits directly rather than a
correction to ``h`` read through ``W_out`` (RLPrompt's form): a correction to ``h`` moves every
candidate's logit at once along one direction, and with Adam's sign-like first steps a few dozen
noisy REINFORCE steps collapsed the policy onto one token (``' to to to to to'``); a logit per
candidate moves only what the rewards speak about. By default a prompt never repeats a token
(written tokens are masked), which rules out such degenerate prompts altogether.

The hidden states do not depend on the head, so sampling keeps them and the policy-gradient
update runs the head alone on them: no second backbone pass. Sampling draws from NumPy's
generator (the caller's, so its state can be saved); the head's weights and its Adam moments
travel as plain float32 arrays (:meth:`PromptPolicy.state_arrays`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from promptscout.errors import PromptscoutError
from promptscout.model.causal import CausalLM


def _causal(model: Any) -> CausalLM:
    if not isinstance(model, CausalLM):
        raise PromptscoutError(
            f"the rl searcher's policy needs a causal LM backbone; model '{model.name}' is "
            f"{model.kind}"
        )
    return model


class PromptPolicy:
    """A frozen causal LM plus a trainable MLP head that samples prompt tokens.

    Args:
        model: the backbone (a :class:`~promptscout.model.causal.CausalLM`; frozen, shared).
        candidates: token ids the policy may write (the action space).
        context: token ids the policy reads before writing (at least one).
        mlp_hidden: width of the head's hidden layer.
        learning_rate: Adam's step size.
        prior: weight of the backbone's own logits (1: the untrained policy is the backbone's
            distribution; 0: uniform over the candidates).
        repeats: whether a prompt may hold a token twice.
        seed: seeds the head's first-layer weights (the second starts at zero).
    """

    def __init__(
        self,
        model: Any,
        candidates: Sequence[int],
        context: Sequence[int],
        *,
        mlp_hidden: int = 128,
        learning_rate: float = 1e-3,
        prior: float = 1.0,
        repeats: bool = False,
        seed: int = 0,
    ) -> None:
        self.model = _causal(model)
        if not candidates:
            raise PromptscoutError("rl: the candidate vocabulary is empty")
        if not context:
            raise PromptscoutError("rl: the policy's context has no tokens")
        hf = self.model.hf_model
        self._body = hf.get_decoder()
        head = hf.get_output_embeddings()
        if self._body is None or head is None or getattr(head, "weight", None) is None:
            raise PromptscoutError(
                f"rl: model '{model.name}' exposes no decoder body and output head"
            )
        self.candidates = [int(c) for c in candidates]
        self.prior = float(prior)
        self.repeats = bool(repeats)
        self.context = [int(c) for c in context]
        self.device = self.model.device
        ids = torch.tensor(self.candidates, dtype=torch.long, device=self.device)
        with torch.no_grad():
            self._out = head.weight[ids].detach().float().clone()  # [candidates, hidden]
            bias = getattr(head, "bias", None)
            self._out_bias = bias[ids].detach().float().clone() if bias is not None else None
        width = int(self._out.shape[1])
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(width)
        init = {
            "w1": rng.uniform(-bound, bound, (mlp_hidden, width)),
            "b1": np.zeros(mlp_hidden),
            # zero: the untrained policy is the (prior-weighted) backbone
            "w2": np.zeros((len(self.candidates), mlp_hidden)),
            "b2": np.zeros(len(self.candidates)),
        }
        self.params = {
            k: torch.tensor(v, dtype=torch.float32, device=self.device, requires_grad=True)
            for k, v in init.items()
        }
        self.optimizer = torch.optim.Adam(list(self.params.values()), lr=learning_rate)

    # -- the policy ----------------------------------------------------------------------------

    def logits(self, states: torch.Tensor, written: torch.Tensor | None = None) -> torch.Tensor:
        """Candidate logits ``[..., candidates]`` from backbone hidden states ``[..., hidden]``.

        Args:
            states: the backbone's hidden states.
            written: ``[..., candidates]`` booleans, the candidates already in the prompt: masked
                out unless the policy allows repeats.
        """
        p = self.params
        backbone = states @ self._out.T
        if self._out_bias is not None:
            backbone = backbone + self._out_bias
        mlp = torch.relu(states @ p["w1"].T + p["b1"]) @ p["w2"].T + p["b2"]
        out = self.prior * backbone + mlp
        if written is not None and not self.repeats:
            out = out.masked_fill(written, float("-inf"))
        return out

    def _written_masks(self, picks: torch.Tensor) -> torch.Tensor:
        """``[n, k, candidates]``: at step ``t``, the candidates picked at steps before ``t``."""
        n, k = picks.shape
        masks = torch.zeros((n, k, len(self.candidates)), dtype=torch.bool, device=self.device)
        for t in range(1, k):
            masks[:, t] = masks[:, t - 1]
            masks[torch.arange(n), t, picks[:, t - 1]] = True
        return masks

    def _states(self, rows: list[list[int]]) -> torch.Tensor:
        """The backbone's last hidden state after each row (rows of equal length)."""
        ids = torch.tensor(rows, dtype=torch.long, device=self.device)
        with torch.inference_mode():
            out = self._body(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False)
        return out[0][:, -1].float().clone()

    def sample(
        self, n: int, length: int, rng: np.random.Generator, *, greedy: bool = False
    ) -> tuple[list[list[int]], torch.Tensor]:
        """Write ``n`` prompts of ``length`` tokens.

        Args:
            n: prompts to write.
            length: tokens per prompt.
            rng: draws the tokens (unused when ``greedy``).
            greedy: take the most likely token at every step instead of sampling.

        Returns:
            The token ids (``n`` lists of ``length``) and the hidden states they were drawn from
            (``[n, length, hidden]``, for :meth:`update`).
        """
        if not self.repeats and length > len(self.candidates):
            raise PromptscoutError(
                f"rl: {length} prompt tokens without repeats need at least {length} candidate "
                f"words; there are {len(self.candidates)}"
            )
        written: list[list[int]] = [[] for _ in range(n)]
        used = torch.zeros((n, len(self.candidates)), dtype=torch.bool, device=self.device)
        states = []
        for _ in range(length):
            # Every row has the same length, so no padding; k is small, so recomputing the
            # context each step costs less than it takes to say.
            h = self._states([self.context + [self.candidates[t] for t in w] for w in written])
            states.append(h)
            with torch.no_grad():
                logits = self.logits(h, used).double()
                logp = torch.log_softmax(logits, dim=-1).cpu().numpy()
            if greedy:
                picks = logp.argmax(axis=1)
            else:
                # Inverse-CDF draws from NumPy's generator: its state is plain JSON.
                cdf = np.cumsum(np.exp(logp), axis=1)
                # u > 0: a draw of exactly 0 would pick index 0 even when it is masked.
                u = np.maximum(rng.random(n) * cdf[:, -1], np.finfo(np.float64).tiny)
                picks = np.minimum((cdf < u[:, None]).sum(axis=1), cdf.shape[1] - 1)
            for row, (w, p) in enumerate(zip(written, picks, strict=True)):
                w.append(int(p))
                used[row, int(p)] = True
        tokens = [[self.candidates[t] for t in w] for w in written]
        return tokens, torch.stack(states, dim=1)

    def update(
        self,
        states: torch.Tensor,
        tokens: Sequence[Sequence[int]],
        advantages: Sequence[float],
        *,
        entropy: float = 0.0,
    ) -> dict[str, float]:
        """One REINFORCE step: raise the log-probability of prompts with positive advantage.

        Args:
            states: the hidden states :meth:`sample` returned with ``tokens``.
            tokens: the sampled prompts' token ids.
            advantages: one per prompt (e.g. z-scored rewards).
            entropy: weight of an entropy bonus (keeps the policy exploring).

        Returns:
            The loss and the mean per-token entropy of the policy on these states.
        """
        index = {t: i for i, t in enumerate(self.candidates)}
        picks = torch.tensor(
            [[index[t] for t in row] for row in tokens], dtype=torch.long, device=self.device
        )
        adv = torch.tensor(list(advantages), dtype=torch.float32, device=self.device)
        logits = self.logits(states, self._written_masks(picks))
        logp = torch.log_softmax(logits, dim=-1)  # [n, k, candidates]; masked: -inf
        chosen = logp.gather(-1, picks[..., None])[..., 0].sum(dim=1)
        probs = logp.exp()
        mean_entropy = -(probs * logp.masked_fill(probs == 0, 0.0)).sum(-1).mean()
        loss = -(adv * chosen).mean() - entropy * mean_entropy
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.detach()), "entropy": float(mean_entropy.detach())}

    # -- state ---------------------------------------------------------------------------------

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The head's weights and Adam's moments and step count, as float32 arrays."""
        out = {k: v.detach().cpu().numpy().copy() for k, v in self.params.items()}
        for k, v in self.params.items():
            moments = self.optimizer.state.get(v, {})
            for name in ("exp_avg", "exp_avg_sq", "step"):
                if name in moments:
                    out[f"{k}.{name}"] = np.asarray(
                        torch.as_tensor(moments[name]).detach().cpu().numpy(), dtype=np.float32
                    ).copy()
        return out

    def load_state_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`state_arrays` returned (bit for bit)."""
        with torch.no_grad():
            for k, v in self.params.items():
                v.copy_(torch.as_tensor(np.asarray(arrays[k]), dtype=torch.float32))
        self.optimizer.state.clear()
        for k, v in self.params.items():
            if f"{k}.step" not in arrays:
                continue
            step = float(np.asarray(arrays[f"{k}.step"]).reshape(-1)[0])
            self.optimizer.state[v] = {
                "step": torch.tensor(step),
                **{
                    name: torch.tensor(np.asarray(arrays[f"{k}.{name}"]), device=self.device)
                    for name in ("exp_avg", "exp_avg_sq")
                },
            }


def word_candidates(model: Any, size: int, exclude: Sequence[str] = ()) -> list[int]:
    """The first ``size`` tokens (by id: byte-level BPE ids rise with rarity) whose text is a
    space and letters only, that tokenise back to themselves, and are not in ``exclude``.

    Args:
        model: a Hugging Face LM.
        size: how many to keep (fewer if the vocabulary has fewer).
        exclude: words never used (compared stripped and lower-cased).
    """
    tokenizer = _causal(model).tokenizer
    skip = {w.strip().lower() for w in exclude}
    special = set(tokenizer.all_special_ids)
    out: list[int] = []
    vocab = int(model.input_embeddings().shape[0])
    for token in range(vocab):
        if len(out) >= size:
            break
        if token in special:
            continue
        text = tokenizer.decode([token])
        word = text[1:]
        if not (text.startswith(" ") and word.isascii() and word.isalpha()):
            continue
        if word.lower() in skip or model.tokenize(text) != [token]:
            continue
        out.append(token)
    return out
