"""Feature names of a strategy, in pure Python (the backend shows them without numpy).

Order: ``nn_inputs`` order, then each fuzzy set's memberships in the order the YAML lists them;
a feature is named ``{fuzzy_set}_{membership}`` (``rsi_14_oversold``), as in the original system.
"""

from __future__ import annotations

from ktrdr.strategy.schema import StrategyConfig


def feature_names(strategy: StrategyConfig) -> list[str]:
    """The network's input columns, in order."""
    return [name for name, _, _ in feature_plan(strategy)]


def feature_plan(strategy: StrategyConfig) -> list[tuple[str, str, str]]:
    """(feature name, fuzzy set, membership) for each input column, in order."""
    plan: list[tuple[str, str, str]] = []
    for nn_input in strategy.nn_inputs:
        group = strategy.fuzzy_sets[nn_input.fuzzy_set]
        plan.extend((f"{nn_input.fuzzy_set}_{member}", nn_input.fuzzy_set, member) for member in group.sets)
    return plan
