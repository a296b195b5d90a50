"""Evaluators score prompts against the model (in-process or on Ray actors); racing decides how
far each candidate is scored; outcomes are what searchers are told.

The submodules are imported where they are needed: ``evaluation.local`` and the Ray modules
bring the model stack, ``evaluation.base`` and ``evaluation.outcome`` are plain data.
"""
