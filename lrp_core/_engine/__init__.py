"""The hook engine: how a rule's backward replaces a module's gradient.

This private package is the mechanism under the Zennit-compatible API of ``lrp_core``
(``core``, ``rules``, ``attribution``) and under the live session (``lrp_core.live``). Its modules
have plain names, and nothing outside it imports them: they are used through the names
re-exported here.

``hook_function``
    The forward hooks that wrap a module call in an autograd function (``pre_forward``,
    ``post_forward``) so its backward runs a rule.
``module_call``
    ``ModuleCall``, the record of one hooked call, and the switch that lets hooks pass calls
    through while a rule re-runs its module.
``protocols``
    What the engine needs of a rule, as structural types (``lrp_core.core``'s hooks fulfil
    them; ``ModuleHook`` is in ``module_call``).
``gradients``
    The true local gradient of a hooked module (first and second order).
``relevance``
    The ``BasicHook`` relevance formula: modified forwards, gradient maps, VJPs and reduction.
``gamma``
    The Gamma rule's four sign-split terms computed together.
``chunks``
    Output-channel slices that bound the memory of the relevance formula.
``modifiers``
    Parameter modifiers (``ParamMod`` and friends), stabilizers and the sign-split input
    modifiers (``positive_part``, ``negative_part``).
``rule_base``
    Hyperparameter checks, equality and copies shared by every rule.
``composite``, ``handles``
    ``Composite`` (rules registered on a model's modules) and removable handles.
``attribution_base``
    The attributor base classes and their checks.
``operations``
    The table of captured functional operations (``torch.matmul``, ``F.softmax``, ``x + y``, ...)
    and ``OpCall``, one captured call.
``capture``
    ``CaptureSession``: a ``TorchFunctionMode`` that names each captured call and runs it
    through an op rule during a model's forward pass.
``deferred``
    ``deferred_call``: a captured call whose op rule is chosen in each backward pass (live).
``functions``
    The autograd functions op rules are made of (gradient scalings, epsilon and identity
    gradients, relevance <-> gradient × input conversion).

It imports nothing else from ``lrp_core``, not even for type annotations: hooks are named by the
protocols of ``protocols``.
"""

from .attribution_base import (
    Attributor,
    AttrOutput,
    BatchedAttributor,
    CompositeInUseError,
    MeanGradientAttributor,
    OutputSeed,
    check_output,
    check_positive_int,
)
from .capture import ACTIVATION_TAG, CaptureConflictError, CaptureSession
from .composite import Composite, CompositeContext
from .deferred import deferred_call
from .functions import (
    epsilon_gradient,
    identity_gradient,
    normalized_gradient,
    scale_gradient,
)
from .gamma import gamma_relevance, pack_sign
from .gradients import second_order_gradient, true_gradient
from .handles import RemovableHandle, RemovableHandleList
from .hook_function import CallRegistry, post_forward, pre_forward
from .modifiers import (
    ClampMod,
    GammaMod,
    MissingParameterError,
    NoMod,
    ParamMod,
    Stabilizer,
    expand,
    negative_part,
    param_identity,
    positive_part,
    stabilize,
    zero_params_list,
)
from .module_call import ModuleCall, bypassing
from .operations import OP_TYPES, OpCall, OpSpec, carries, spec_of
from .relevance import (
    LINEAR_TYPES,
    GradientMap,
    add_terms,
    basic_relevance,
    broadcast_zeros,
    map_relevance,
    modified_forwards,
    nonzero,
    term_vanishes,
)
from .rule_base import RuleBase, check_number

__all__ = [
    "ACTIVATION_TAG",
    "OP_TYPES",
    "CaptureConflictError",
    "CaptureSession",
    "OpCall",
    "OpSpec",
    "carries",
    "deferred_call",
    "epsilon_gradient",
    "identity_gradient",
    "normalized_gradient",
    "scale_gradient",
    "spec_of",
    "LINEAR_TYPES",
    "AttrOutput",
    "Attributor",
    "BatchedAttributor",
    "CompositeInUseError",
    "CallRegistry",
    "ClampMod",
    "Composite",
    "CompositeContext",
    "GammaMod",
    "GradientMap",
    "MeanGradientAttributor",
    "MissingParameterError",
    "ModuleCall",
    "NoMod",
    "OutputSeed",
    "ParamMod",
    "RemovableHandle",
    "RemovableHandleList",
    "RuleBase",
    "Stabilizer",
    "add_terms",
    "basic_relevance",
    "broadcast_zeros",
    "bypassing",
    "check_number",
    "check_output",
    "check_positive_int",
    "expand",
    "gamma_relevance",
    "map_relevance",
    "modified_forwards",
    "negative_part",
    "nonzero",
    "pack_sign",
    "param_identity",
    "positive_part",
    "post_forward",
    "pre_forward",
    "second_order_gradient",
    "stabilize",
    "term_vanishes",
    "true_gradient",
    "zero_params_list",
]
