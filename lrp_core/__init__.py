"""lrp_core: a hook engine for Layer-wise Relevance Propagation and other modified gradients.

Three layers, each in its own place:

* the Zennit-compatible API at the top level, with the reference library's module names:
  ``core`` (hooks, ``BasicHook``, ``ParamMod``, ``Composite``), ``rules``, ``composites``,
  ``canonizers``, ``attribution``, ``types``, ``layer``, ``image``, ``cmap`` and ``torchvision``;
* ``live``: live explanations (one forward pass, rules that change at will, backward-only
  re-runs), their rule assignment, configuration and records;
* ``evaluation``: scores of explanations (conservation, sparseness, localisation,
  faithfulness, class sensitivity).

The hook mechanism under them is the private package ``_engine``. Importing ``lrp_core`` loads
none of these; import the one you need (``from lrp_core.rules import Epsilon``).
"""

__version__ = "0.1.0"
