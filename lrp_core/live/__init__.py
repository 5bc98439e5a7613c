"""Live explanations: one forward pass, rules that change at will, backward-only re-runs.

>>> from lrp_core.live import LiveExplanation
>>> live = LiveExplanation(model, images, "epsilon_plus_flat")
>>> result = live.explain(target=3)                 # relevance of class 3 for every sample
>>> live.set_params("features.0", stabilizer=1e-3)  # no forward pass
>>> result = live.explain(target=3)                 # backward only; live.forward_count == 1

Everything a user, a widget or a test needs is imported from here. The modules behind it:

``explanation``
    ``LiveExplanation`` (its lifetime, inputs and ``explain``) and ``LiveResult``.
``editing``
    The assignment changes of a live explanation (``assign``, ``set_params``, ``set_composite``,
    ``apply_config``) and its export (``to_json``, ``to_code``, ``to_composite``).
``forward``, ``dispatch``, ``linear_terms``
    The one recorded forward pass, the dispatching hook that asks the current assignment for each
    module's rule in the backward pass, and the closed-form re-run of signed-sum rules on linear
    layers.
``assignment``
    ``RuleAssignment``: composite defaults plus the user's overrides, per leaf module.
``value_checks``
    Rule parameter values checked against the layer they go to (the model's dtype, the
    layer's input shape), so a value that cannot be computed is refused at assignment.
``rule_registry``
    Rules by name (``register_rule`` for custom rules).
``config``, ``snippet``
    An assignment as JSON and as a composite or Python source; both work on plain values (an
    assignment, a composite spec, a canonizer set name).
``ops``
    Rules on captured functional operations (``AttnLRP``, ``CPLRP``) that change live.
``records``, ``targets``, ``describe``, ``groups``
    Per-layer relevance records, conservation and ``LiveResult``; explanation targets; the
    model as a tree, with its runs of repeated blocks.
"""

from .assignment import (
    COMPOSITE,
    FALLBACK,
    OVERRIDE,
    PLAIN,
    AssignmentError,
    EffectiveRule,
    Override,
    RuleAssignment,
    RuleNotApplicableError,
    check_applicable,
    composite_defaults,
    reports_fallback,
)
from .config import (
    CANONIZERS,
    FORMAT,
    VERSION,
    CanonizerSet,
    ConfigChange,
    ConfigError,
    Configured,
    canonizer_set_name,
    composite_spec,
    config_dict,
    decode_value,
    encode_value,
    parse_config,
    read_canonizers,
    read_composite,
    read_config,
    read_overrides,
    register_canonizers,
    to_config,
    to_json,
)
from .describe import describe_model
from .explanation import Live, LiveExplanation, live_from_config
from .forward import LiveInputError, RuleFailedError, TrainingModeWarning
from .groups import (
    MIN_MEMBERS,
    RepeatedGroup,
    covering_modules,
    mark_groups,
    repeated_groups,
)
from .ops import LiveOps, OpAssignmentError
from .records import (
    OUTSIDE_MODULES,
    ConservationReport,
    LayerRecord,
    LiveResult,
    Violation,
    conservation_report,
)
from .rule_registry import (
    GRADIENT,
    RULES,
    RuleParameterError,
    UnknownRuleError,
    make_rule,
    parameter_names,
    register_rule,
    rule_class,
    rule_label,
    rule_name,
    rule_params,
    unregister_rule,
    with_params,
)
from .snippet import to_code, to_composite
from .targets import Target, TargetError, predicted_classes, top_k_classes

__all__ = [
    "CANONIZERS",
    "COMPOSITE",
    "FALLBACK",
    "FORMAT",
    "GRADIENT",
    "MIN_MEMBERS",
    "OUTSIDE_MODULES",
    "OVERRIDE",
    "PLAIN",
    "RULES",
    "VERSION",
    "AssignmentError",
    "CanonizerSet",
    "ConfigChange",
    "ConfigError",
    "Configured",
    "ConservationReport",
    "EffectiveRule",
    "LayerRecord",
    "Live",
    "LiveExplanation",
    "LiveInputError",
    "LiveOps",
    "LiveResult",
    "OpAssignmentError",
    "Override",
    "RepeatedGroup",
    "RuleAssignment",
    "RuleFailedError",
    "RuleNotApplicableError",
    "RuleParameterError",
    "Target",
    "TargetError",
    "TrainingModeWarning",
    "UnknownRuleError",
    "Violation",
    "canonizer_set_name",
    "check_applicable",
    "composite_defaults",
    "composite_spec",
    "config_dict",
    "conservation_report",
    "covering_modules",
    "decode_value",
    "describe_model",
    "mark_groups",
    "repeated_groups",
    "encode_value",
    "live_from_config",
    "make_rule",
    "parameter_names",
    "parse_config",
    "predicted_classes",
    "read_canonizers",
    "read_composite",
    "read_config",
    "read_overrides",
    "register_canonizers",
    "register_rule",
    "rule_class",
    "rule_label",
    "rule_name",
    "rule_params",
    "reports_fallback",
    "to_code",
    "to_composite",
    "to_config",
    "to_json",
    "top_k_classes",
    "unregister_rule",
    "with_params",
]
