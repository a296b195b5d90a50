"""Bayesian search: Optuna's TPE over a structured prompt space, the way DSPy's MIPROv2 searches
instructions and demonstrations.

The space is categorical, every choice an index: the template (one of ``templates``, or one
composed from a field label per input field, an answer cue and a separator, as the random searcher
composes them), the instruction, the label word of each class, how many demonstrations and which
training example fills each demonstration slot, in order. Every prompt asked for is an Optuna
trial of a multivariate, grouped TPE with the constant liar, so a batch of parallel asks spreads
out instead of repeating one guess. What the campaign tells becomes the trial's outcome:

* a candidate racing stopped early: PRUNED, its minibatch score first reported as an intermediate
  value at step = examples scored, so TPE ranks it below the finished candidates;
* a candidate scored on the whole search split: COMPLETE with the campaign's ranking score
  (:meth:`SearchContext.score`, larger is better), and its prompt length in tokens as a second,
  minimised value in multi-objective mode (:meth:`BayesianSearcher.pareto_front`);
* a failed evaluation: FAIL.

TPE repeats categorical combinations. A repeat of a prompt already told is not asked again: its
trial is told the known value (repeated full-split measurements are averaged, never the best of
them kept); a repeat of a prompt still being scored is told when that prompt is.

The study is kept where ``optuna-dashboard`` reads it: in a campaign, ``<store stem>.optuna.db``
next to the store (an Optuna ``RDBStorage`` on SQLite, study ``<campaign>/<searcher>``, every
finished trial with its prompt as user attributes), e.g. ``optuna-dashboard
sqlite:///runs/sst2-bayesian.optuna.db``. TPE itself samples in an in-memory copy (a database
round trip per parameter costs more than the sampling), which the saved state rebuilds exactly:
each trial is sampled with a seed of its own (campaign seed, trial number), so ``resume`` makes
again, identically, the trials a killed run had asked and not told, keeps the copies the killed
run had already written, and ends with the same trials as a run straight through. Without a
store (a searcher built directly, as in tests) there is only the in-memory study.

Instructions come from the pool: proposing them with the instruct model, as MIPROv2 does, needs
a model handle that :class:`SearchContext` does not give searchers.

Example:
    >>> from promptscout.searchers.bayesian import BayesianConfig, BayesianSearcher
    >>> from promptscout.searchers.base import SearchContext
    >>> from promptscout.tasks import load_task
    >>> task = load_task("sst-2")
    >>> config = BayesianConfig(templates=["Review: {text}\\nSentiment:", "{text} It was"],
    ...                         label_word_candidates=[["negative", "bad"], ["positive", "good"]])
    >>> searcher = BayesianSearcher(config, SearchContext(task, task.label_words, seed=0))
    >>> prompts = searcher.ask(4)
    >>> prompts[0].template, prompts[0].label_words     # the first trial: the first choices
    ('Review: {text}\\nSentiment:', ('negative', 'positive'))
"""

from promptscout.searchers.bayesian.searcher import BayesianSearcher
from promptscout.searchers.bayesian.space import BayesianConfig, PromptSpace

__all__ = ["BayesianConfig", "BayesianSearcher", "PromptSpace"]
