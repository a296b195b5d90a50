"""``promptscout report``: a self-contained HTML page of a campaign store, computed from the
store alone (no model).

The page shows, top to bottom:

- the leaderboard table;
- why the pick (the leaderboard's first row) wins: its confusion matrix on the held-out split (a
  figure, with class names) and per-class accuracy, and the held-out examples on which it and
  the best hand-written candidate disagree (texts, gold labels, both predictions);
- where the finalists came from: searcher, parents and other searcher notes, readout, cost
  (examples, tokens, seconds, dollars where priced) and selection's evidence;
- what was scored: how many candidates were scored, completed, stopped early by racing, failed
  (with the most common reasons), validated by selection and re-scored on the held-out split;
- figures: best score so far against the examples the campaign scored, per searcher; the
  finalists and ensembles on the held-out split with 95% intervals; dev score against prompt
  length with the Pareto front; searchers' training curves, the ones a searcher declares through
  its reporting hook (:meth:`~promptscout.searchers.Searcher.curves`; e.g. the RL searcher's
  reward per training step), which the campaign stores after every turn as
  ``{"points": [[x, y], ...], "x": ..., "y": ..., "title": ...}`` (a bare list of ``[x, y]``
  pairs is read too).

Each figure is also written as a PNG beside the HTML (``<name>-progress.png`` ...). An accuracy
axis starts at chance (1/classes) or at 0 and says which; every value axis names its metric and
split. Modules: :mod:`.curves` (progress and training curves), :mod:`.explain` (the pick's
confusion matrix and disagreements), :mod:`.provenance` (counts, origins, costs),
:mod:`.figures` (drawing), :mod:`.page` (the HTML, written atomically).
"""

from promptscout.report.curves import best_so_far, searcher_curves
from promptscout.report.figures import draw_figures
from promptscout.report.page import write_report

__all__ = ["best_so_far", "draw_figures", "searcher_curves", "write_report"]
