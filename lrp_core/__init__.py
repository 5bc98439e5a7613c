"""lrp_core: a hook engine for Layer-wise Relevance Propagation and other modified gradients.

Submodules follow the layout of the reference library: ``core`` (hooks, ``BasicHook``,
``ParamMod``, ``Composite``), ``rules``, ``composites``, ``canonizers``, ``attribution``,
``types``, ``layer``, ``image``, ``cmap`` and ``torchvision``. Importing the package loads none
of them; import the one you need (``from lrp_core.rules import Epsilon``).
"""

__version__ = "0.1.0"
