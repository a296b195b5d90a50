"""Evolutionary search: a population of prompts bred with DEAP, as a genetic algorithm or as
differential evolution (EvoPrompt's GA and DE), over the parts random search draws from.

A genome is a prompt's parts (:mod:`.genome`): the instruction as a list of phrases, the
demonstrations (training example ids), a label per input field, the separator, free ``[T]``
tokens before the answer cue, the cue, and one label word per class. Operators (:mod:`.operators`)
delete, swap, add (from the phrase pool) and paraphrase instruction phrases, substitute tokens,
add, drop, replace and reorder demonstrations, resample field labels, separator, cue and label
words, and cross parts over (uniform or one-point). With ``lm_operators = true`` the campaign's
instruct model paraphrases phrases and crosses two instructions (:mod:`.lm_operators`); an
unusable answer falls back to the symbolic operator.

* ``algorithm = "ga"`` (:mod:`.ga`): tournament selection, crossover, mutation; the next
  population is the best of the children and the ``elite`` best parents (by default all of them,
  as in EvoPrompt), and a hall of fame keeps the best prompts ever seen.
* ``algorithm = "de"`` (:mod:`.de`): for each member, the parts where two donors differ are taken
  into a mutant of the best member, the mutant is crossed with the member, and the trial
  replaces the member if it is at least as fit.

The first generation is the ``initial`` hand-written members, then random draws from the pools
(zero-shot unless ``init_demos`` > 0). ``ask`` hands out the current generation; a generation
advances when all its offspring are told. Fitness is ``(fraction of the search split scored,
ranking score)``, compared lexicographically: a candidate that racing stopped early ranks below
every candidate scored on the whole split (its partial score only orders it among the stopped),
because it was clearly behind the incumbent and a minibatch score is noisy. Population,
offspring, hall of fame, random stream and the LM answers are the saved state, so a killed
campaign resumes to the same result. DEAP's ``creator`` is not used: the individual is a plain
``list`` subclass, and only :class:`~promptscout.prompts.Prompt` objects reach evaluators.

Example:
    >>> from promptscout.searchers.evolutionary import EvolutionaryConfig, EvolutionarySearcher
    >>> from promptscout.searchers.base import SearchContext
    >>> from promptscout.evaluation.base import Evaluation
    >>> from promptscout.tasks import load_task
    >>> task = load_task("sst-2")
    >>> config = EvolutionaryConfig(algorithm="de", population_size=4, cues=["It was", "Answer:"])
    >>> searcher = EvolutionarySearcher(config, SearchContext(task, task.label_words, seed=0))
    >>> first = searcher.ask(4)
    >>> told = [Evaluation(p.key, "dev", ("dev-0",), [], {"accuracy": 0.5}) for p in first]
    >>> searcher.tell([searcher.context.outcome(p, e) for p, e in zip(first, told)])
    >>> searcher.generation, len(searcher.ask(4))
    (1, 4)
"""

from promptscout.searchers.evolutionary.searcher import EvolutionarySearcher
from promptscout.searchers.evolutionary.space import EvolutionaryConfig, PartSpace

__all__ = ["EvolutionaryConfig", "EvolutionarySearcher", "PartSpace"]
