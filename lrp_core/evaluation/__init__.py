"""Evaluation scores for relevance maps, as plain functions on tensors.

Each score documents its exact definition in its docstring. Long scores accept a
``progress(step, total)`` callback that may return ``False`` or raise :class:`Cancelled`.

- faithfulness: :func:`region_perturbation` (MoRF/LeRF curves and ABPC);
- sensitivity: :func:`class_sensitivity` (random-logit style);
- complexity: :func:`conservation_error`, :func:`sparseness` (Gini index);
- localisation: :func:`relevance_mass_accuracy`, :func:`pointing_game`.
"""

from ._checks import Cancelled, EvaluationInputError, Progress
from .complexity import conservation_error, sparseness
from .faithfulness import PerturbationCurves, make_baseline, region_perturbation, region_ranks
from .localisation import pointing_game, relevance_mass_accuracy
from .sensitivity import ClassSensitivity, class_sensitivity, random_other_classes

__all__ = [
    "Cancelled",
    "ClassSensitivity",
    "EvaluationInputError",
    "PerturbationCurves",
    "Progress",
    "class_sensitivity",
    "conservation_error",
    "make_baseline",
    "pointing_game",
    "random_other_classes",
    "region_perturbation",
    "region_ranks",
    "relevance_mass_accuracy",
    "sparseness",
]
