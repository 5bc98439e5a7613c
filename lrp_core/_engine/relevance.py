"""Backward computation of ``BasicHook``: the relevance formula.

For ``BasicHook`` with K modifier triples (see ``lrp_core.core.BasicHook``)::

    x_k = in_k(x),  y_k = out_k(f(x_k; param_k(θ))),  (γ_1..γ_K) = gmap(R, (y_1..y_K)),
    v_k = (∂y_k/∂x_k)ᵀ γ_k,  R_in = reduce((x_1..x_K), (v_1..v_K)).

Exact shortcuts (never used while building a graph for higher-order gradients):

* a term whose three modifiers are identities reuses the forward's own local graph;
* a term of a linear-type module whose bias is zeroed, whose modified input is all zero and whose
  contribution the reducer weights by that input (``_weighted_terms``) gives y_k = 0 and
  contributes nothing, so the module is not re-run for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch

from .chunks import output_chunks, output_slice, sliced
from .modifiers import ParamMod
from .module_call import ModuleCall

if TYPE_CHECKING:
    from .protocols import TermRule

LINEAR_TYPES = (torch.nn.Linear, torch.nn.modules.conv._ConvNd)


def _chunks_for(hook: TermRule, call: ModuleCall) -> list | None:
    """Output channel slices for the chunked path, or None when it does not apply."""
    if (
        not getattr(hook, "_elementwise", False)
        or hook._term_signs is None
        or call.outputs is not None
        or len(call.inputs) != 1
        or len(call.output_shapes) != 1
    ):
        return None
    x = call.inputs[0]
    return output_chunks(call.module, x.numel() * x.element_size())


def broadcast_zeros(shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    # a broadcast zero costs no memory
    return torch.zeros((), dtype=like.dtype, device=like.device).expand(shape)


def vanishes_for_zero_input(module: torch.nn.Module, param_mod: ParamMod) -> bool:
    """Whether f(0; θ') = 0 for this module under ``param_mod`` (linear type without bias)."""
    if not isinstance(module, LINEAR_TYPES):
        return False
    return getattr(module, "bias", None) is None or "bias" in param_mod.zero_params


def term_vanishes(hook: TermRule, module: torch.nn.Module, k: int, inputs: list) -> bool:
    """Whether term k contributes nothing: f(0; θ'_k) = 0, its modified inputs are all zero and
    the reducer weights its contribution by them."""
    return (
        hook._weighted_terms[k]
        and vanishes_for_zero_input(module, hook.param_modifiers[k])
        and all(_is_broadcast_zero(x) or not nonzero(x) for x in inputs)
    )


def _term_outputs(hook: TermRule, call: ModuleCall, k: int, base: list, create_graph: bool):
    """Modified inputs and outputs of term k; outputs None when the term provably vanishes."""
    if (
        not create_graph
        and hook._identity_terms[k]
        and call.leaves is not None
        and call.outputs_unchanged()
    ):
        return call.leaves, call.outputs, True
    param_mod = hook.param_modifiers[k]
    with torch.set_grad_enabled(create_graph):
        inputs = [hook.input_modifiers[k](x) for x in base]
    if not create_graph and term_vanishes(hook, call.module, k, inputs):
        return inputs, None, False
    if not create_graph:
        inputs = [x.detach().requires_grad_() for x in inputs]
    with torch.enable_grad():
        with param_mod(call.module):
            outputs = call.rerun(inputs)
        outputs = [hook.output_modifiers[k](y) for y in outputs]
    return inputs, outputs, False


#: ``(j, R_j, (y_1j..y_Kj)) -> (γ_1j..γ_Kj)``: the vectors of the K VJPs for output j
GradientMap = Callable[[int, torch.Tensor, tuple], tuple]


def modified_forwards(hook: TermRule, call: ModuleCall, create_graph: bool = False) -> list:
    """The K terms of the formula: ``(x_k, y_k or None if it vanishes, reuses the forward graph)``.

    They depend on the module's input and parameters only, never on the incoming relevance.
    """
    base = list(call.originals) if create_graph else list(call.inputs)
    n_terms = len(hook.input_modifiers)
    return [_term_outputs(hook, call, k, base, create_graph) for k in range(n_terms)]


def map_relevance(hook: TermRule, grad: torch.Tensor, outputs: tuple) -> tuple:
    """``gradient_mapper(R, outputs)`` as one entry per term (None: that term gets no relevance).

    Raises ``RuntimeError`` if the mapper returns a number of tensors other than the term count.
    """
    n_terms = len(hook.input_modifiers)
    mapped = hook.gradient_mapper(grad, outputs)
    if isinstance(mapped, torch.Tensor):
        mapped = (mapped,) * n_terms
    mapped = tuple(mapped)
    if len(mapped) != n_terms:
        raise RuntimeError(
            f"gradient_mapper returned {len(mapped)} tensors, but the hook has "
            f"{n_terms} modifier terms; return one tensor per term."
        )
    return mapped


def basic_relevance(
    hook: TermRule,
    call: ModuleCall,
    grad_outputs: tuple[torch.Tensor, ...],
    *,
    terms: list | None = None,
    gradient_map: GradientMap | None = None,
    retain: bool = False,
    skip_zero: bool = False,
) -> tuple:
    """The BasicHook formula for one module call; one relevance tensor per hooked input.

    Chooses the strategy (output-channel slices when they apply, else whole terms), maps the
    incoming gradients to one vector per term (``mapped_gradients``), runs the VJP of each term
    (``term_vjp``) and reduces: a signed sum (``signed_sum``) where the hook's reducer is one,
    else the reducer itself (``reduced``).

    Parameters
    ----------
    hook : TermRule
        The rule (a ``lrp_core.core.BasicHook``).
    call : ModuleCall
        The recorded module call.
    grad_outputs : tuple of torch.Tensor
        The relevance arriving at the module's outputs.
    terms : list, optional
        Precomputed ``modified_forwards`` for callers that reuse work across backward passes
        (``lrp_core.live``); their list is not changed, and supplying them means a first-order
        computation.
    gradient_map : callable, optional
        ``gradient_map(j, R_j, outputs)`` replacing ``map_relevance``.
    retain : bool
        Keep the terms' graphs for later VJPs.
    skip_zero : bool
        Skip the VJP of an all-zero vector (its result is exactly zero).

    Returns
    -------
    tuple of torch.Tensor
        The relevance of each hooked input.
    """
    create_graph = terms is None and torch.is_grad_enabled()
    call.check_inputs_unchanged()
    if terms is None:
        chunks = None if create_graph else _chunks_for(hook, call)
        if chunks is not None:
            return (chunked_relevance(hook, call, grad_outputs[0], chunks),)
        terms = modified_forwards(hook, call, create_graph)
    else:
        terms = list(terms)  # entries are dropped from this list as they are used
    if gradient_map is None:
        gradient_map = partial(_hook_gradient_map, hook)
    gammas = mapped_gradients(call, terms, grad_outputs, gradient_map, create_graph)
    options = VJPOptions(create_graph, retain, skip_zero and len(terms) > 1)
    base = list(call.originals) if create_graph else list(call.inputs)
    if create_graph or hook._term_signs is None:
        return reduced(hook, base, terms, gammas, options)
    # memory the VJP results must not be written into (a VJP may return its vector itself)
    shared = pointers((*grad_outputs, *(g for row in gammas for g in row)))
    return signed_sum(base, terms, gammas, hook._term_signs, shared, options)


def _hook_gradient_map(hook: TermRule, j: int, grad: torch.Tensor, outputs: tuple) -> tuple:
    return map_relevance(hook, grad, outputs)


def mapped_gradients(
    call: ModuleCall,
    terms: list,
    grad_outputs: tuple[torch.Tensor, ...],
    gradient_map: GradientMap,
    create_graph: bool,
) -> list[list]:
    """γ[k][j]: the vector of term k for output j, from the relevance R_j at that output."""
    gammas: list[list] = [[None] * len(grad_outputs) for _ in terms]
    with torch.set_grad_enabled(create_graph):
        for j, grad in enumerate(grad_outputs):
            outs = tuple(
                broadcast_zeros(call.output_shapes[j], grad)
                if ys is None
                else (ys[j] if create_graph else ys[j].detach())
                for _, ys, _ in terms
            )
            for k, gamma in enumerate(gradient_map(j, grad, outs)):
                gammas[k][j] = gamma
    return gammas


@dataclass(frozen=True)
class VJPOptions:
    """How the VJPs of one relevance computation run."""

    create_graph: bool  #: build a graph for higher-order gradients
    retain: bool  #: keep every term's graph for later VJPs
    skip_zero: bool  #: skip the VJP of an all-zero vector


def term_vjp(
    terms: list, gammas: list[list], k: int, options: VJPOptions, skip: bool = False
) -> tuple[list, list | None]:
    """(x_k, v_k) of term k, v_k = (∂y_k/∂x_k)ᵀ γ_k, or v_k None when no output takes a vector.

    Drops term k's entry from ``terms`` and ``gammas``, so its graph is freed right after its VJP
    (unless retained). ``skip`` skips the VJP (a term the reduction does not need).
    """
    inputs, outputs, reused = terms[k]
    terms[k] = None
    pairs = []
    if outputs is not None and not skip:
        pairs = [
            (y, g)
            for y, g in zip(outputs, gammas[k], strict=True)
            if g is not None and y.requires_grad and not (options.skip_zero and not nonzero(g))
        ]
    gammas[k] = outputs = None
    grads = None
    if pairs:
        grads = torch.autograd.grad(
            [y for y, _ in pairs],
            inputs,
            [g for _, g in pairs],
            retain_graph=options.retain or reused or options.create_graph,
            create_graph=options.create_graph,
            allow_unused=True,
        )
        del pairs
        grads = [
            torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads, strict=False)
        ]
    if not options.create_graph:
        inputs = [x.detach() for x in inputs]
    return inputs, grads


def signed_sum(
    base: list,
    terms: list,
    gammas: list[list],
    signs: tuple,
    shared: set[int],
    options: VJPOptions,
) -> tuple:
    """R_in = Σ_k s_k x_k ⊙ v_k, accumulated in place term by term (first order only)."""
    sums: list = [None] * len(base)
    for k in range(len(terms)):
        inputs, grads = term_vjp(terms, gammas, k, options, skip=signs[k] == 0)
        if grads is None:
            continue  # a vanished term adds nothing to the signed sum
        for i, (x, v) in enumerate(zip(inputs, grads, strict=False)):
            product = v.mul_(x) if owned(v, shared) else x * v
            if sums[i] is None:
                sums[i] = product if signs[k] > 0 else product.neg_()
            else:
                sums[i].add_(product, alpha=signs[k])
        del grads, inputs
    return tuple(
        torch.zeros_like(x) if total is None else total
        for x, total in zip(base, sums, strict=False)
    )


def reduced(
    hook: TermRule, base: list, terms: list, gammas: list[list], options: VJPOptions
) -> tuple:
    """R_in = reducer((x_1..x_K), (v_1..v_K)) for each hooked input."""
    term_inputs, term_grads = [], []
    for k in range(len(terms)):
        inputs, grads = term_vjp(terms, gammas, k, options)
        term_inputs.append(inputs)
        term_grads.append([broadcast_zeros(x.shape, x) for x in inputs] if grads is None else grads)
    with torch.set_grad_enabled(options.create_graph):
        return tuple(
            hook.reducer(
                tuple(inputs[i] for inputs in term_inputs), tuple(grads[i] for grads in term_grads)
            )
            for i in range(len(base))
        )


def chunked_relevance(
    hook: TermRule, call: ModuleCall, grad_output: torch.Tensor, chunks: list
) -> torch.Tensor:
    """The BasicHook formula computed over slices of output channels (see ``chunks``).

    Requires element-wise parameter modifiers and gradient mapper and a signed-sum reducer.
    """
    module, (x,) = call.module, call.inputs
    n_terms = len(hook.input_modifiers)
    inputs = [modify(x) for modify in hook.input_modifiers]
    vanished = [term_vanishes(hook, module, k, [inputs[k]]) for k in range(n_terms)]
    total = None
    for chunk in chunks:
        leaves, outputs = [], []
        with torch.enable_grad():
            for k in range(n_terms):
                if vanished[k]:
                    shape = output_slice(
                        broadcast_zeros(call.output_shapes[0], x), module, chunk
                    ).shape
                    leaves.append(None)
                    outputs.append(broadcast_zeros(shape, x))
                    continue
                leaf = inputs[k].detach().requires_grad_()
                with sliced(module, chunk), hook.param_modifiers[k](module):
                    (output,) = call.rerun([leaf])
                leaves.append(leaf)
                outputs.append(hook.output_modifiers[k](output))
        with torch.no_grad():
            gammas = map_relevance(
                hook, output_slice(grad_output, module, chunk), tuple(o.detach() for o in outputs)
            )
        shared = pointers((grad_output, *gammas))
        for k in range(n_terms):
            sign = hook._term_signs[k]
            if sign == 0 or leaves[k] is None or gammas[k] is None:
                continue
            (v,) = torch.autograd.grad(outputs[k], leaves[k], gammas[k])
            product = v.mul_(inputs[k]) if owned(v, shared) else v * inputs[k]
            if total is None:
                total = product if sign > 0 else product.neg_()
            else:
                total.add_(product, alpha=sign)
        del leaves, outputs, gammas
    return torch.zeros_like(x) if total is None else total


def pointers(tensors: tuple) -> set[int]:
    """Storage addresses of ``tensors`` (None entries skipped)."""
    return {t.untyped_storage().data_ptr() for t in tensors if t is not None}


def owned(tensor: torch.Tensor, shared: set[int]) -> bool:
    """Whether ``tensor`` may change in place: it shares no memory with the ``shared`` storages
    (the incoming gradients and the VJP vectors)."""
    if not tensor.is_contiguous():  # e.g. a broadcast gradient: elements share memory
        return False
    return tensor.untyped_storage().data_ptr() not in shared


def add_terms(*tensors: torch.Tensor) -> torch.Tensor:
    """Sum of ``tensors``, skipping broadcast zeros of vanished terms (no new memory for them)."""
    kept = [t for t in tensors if not _is_broadcast_zero(t)]
    if not kept:
        return tensors[0]
    total = kept[0]
    for t in kept[1:]:
        total = total + t
    return total


def nonzero(t: torch.Tensor) -> bool:
    """Whether ``t`` has an element other than zero (NaN counts); cheaper than ``t.any()``."""
    if t.numel() == 0:
        return False
    if not t.is_floating_point():
        return bool(t.any())
    low, high = torch.aminmax(t)
    return bool(low) or bool(high)  # bool() of a NaN is True


def _is_broadcast_zero(t: torch.Tensor) -> bool:
    return t.numel() > 0 and all(s == 0 for s in t.stride()) and not bool(t.reshape(-1)[0])
