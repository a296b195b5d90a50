"""Writers: searchers whose prompts a language model writes (the campaign's ``[proposer]``, by
default its own model).

- ``ape`` (:mod:`.ape`): instructions induced from training demonstrations, then resampled
  around the best;
- ``opro`` (:mod:`.opro`): instructions written from the best so far with their scores;
- ``reflect`` (:mod:`.reflect`): a parent from the Pareto pool, its mistakes on training
  examples diagnosed in words, its instruction rewritten (and merged with another's).

What they share (:mod:`.base`): the starting pool, seeded rounds, the guardrails every proposal
passes (:mod:`.guardrails`), the proposer's calls, cached and counted apart from the search
budget (:mod:`.writing`), the meta-prompt files (:mod:`.meta_prompts`), lineage notes on every
prompt, and the report of calls, tokens, seconds and drops.
"""

from promptscout.searchers.writers.ape import ApeSearcher
from promptscout.searchers.writers.opro import OproSearcher
from promptscout.searchers.writers.reflect import ReflectSearcher

__all__ = ["ApeSearcher", "OproSearcher", "ReflectSearcher"]
