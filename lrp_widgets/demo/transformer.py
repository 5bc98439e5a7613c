"""The demo transformers: a small vision transformer and a small text classifier.

Both are built from the same pre-norm block, written with explicit operations so that an engine
capturing functional calls sees every step of attention::

    x = x + attention(norm1(x))      # query/key/value Linear, torch.matmul, softmax, torch.matmul
    x = x + mlp(norm2(x))            # Linear, GELU, Linear

:class:`VisionTransformer` (qualified module names as in ``named_modules()``)::

    patch_embedding   Conv2d(3, dim, kernel=stride=patch_size)   64x64 image -> 8x8 = 64 patches,
                      or with ``stem_channels``: Conv2d(3, stem, kernel=stride=patch_size/2), ReLU,
                      Conv2d(stem, dim, kernel=stride=2) (the demo's; same patches, better accuracy)
    cls_token, position_embedding    parameters (a class token is prepended, positions added)
    blocks.0 ...      TransformerBlock: norm1, attention.{query,key,value,output}, norm2,
                      mlp.{fc1,activation,fc2}
    norm              LayerNorm, applied to the class token
    head              Linear(dim, n_classes)

:class:`TextTransformer`::

    token_embedding   Embedding(vocab_size, dim)
    position_embedding  parameter [1, max_length, dim] (added)
    blocks.0 ...      TransformerBlock as above
    norm              LayerNorm
    head              Linear(dim, n_classes), on the mean over the tokens

The text model takes token ids (int64 ``[n, length]``) or token embeddings (float
``[n, length, dim]``, as returned by :meth:`TextTransformer.embed`), so relevance can be taken with
respect to the embeddings with any attributor: ``model(model.embed(ids))`` equals ``model(ids)``.
"""

from __future__ import annotations

import torch
from torch import nn


class SelfAttention(nn.Module):
    """Multi-head self-attention written out: ``softmax(q k^T / sqrt(d)) v``, then a projection.

    Parameters
    ----------
    dim:
        Width of the tokens (a multiple of ``heads``).
    heads:
        Number of attention heads.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        self.heads = heads
        self.head_dim = dim // heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.output = nn.Linear(dim, dim)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        # [n, length, dim] -> [n, heads, length, head_dim]
        n, length, _ = x.shape
        return x.view(n, length, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        query = self._split_heads(self.query(x))
        key = self._split_heads(self.key(x))
        value = self._split_heads(self.value(x))
        scores = torch.matmul(query, key.transpose(-2, -1)) * self.head_dim**-0.5
        weights = nn.functional.softmax(scores, dim=-1)
        context = torch.matmul(weights, value)
        return self.output(context.transpose(1, 2).reshape(n, length, dim))


class MLP(nn.Module):
    """The feed-forward part of a block: ``fc2(gelu(fc1(x)))``.

    Parameters
    ----------
    dim:
        Width of the tokens.
    hidden_dim:
        Width of the hidden layer.
    """

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.activation = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(x)))


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + attention(norm1(x))``, then ``x + mlp(norm2(x))``.

    The residual additions are plain ``+`` in :meth:`forward`, as in real transformers.

    Parameters
    ----------
    dim:
        Width of the tokens.
    heads:
        Number of attention heads.
    mlp_dim:
        Width of the MLP's hidden layer.
    """

    def __init__(self, dim: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def _patch_embedding(dim: int, patch_size: int, stem_channels: int) -> nn.Module:
    """One patchifying convolution, or a half-patch convolution + ReLU stem before a 2x2 one."""
    if not stem_channels:
        return nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)
    half = patch_size // 2
    return nn.Sequential(
        nn.Conv2d(3, stem_channels, kernel_size=half, stride=half),
        nn.ReLU(),
        nn.Conv2d(stem_channels, dim, kernel_size=2, stride=2),
    )


class VisionTransformer(nn.Module):
    """A small ViT classifying square RGB images (layout in the module docstring).

    Parameters
    ----------
    n_classes:
        Number of output logits.
    image_size:
        Side of the input images in pixels (a multiple of ``patch_size``).
    patch_size:
        Side of the square patches: the kernel and stride of the patch embedding convolution.
    dim, depth, heads, mlp_dim:
        Token width, number of blocks, attention heads per block, MLP hidden width.
    """

    def __init__(
        self,
        n_classes: int,
        image_size: int = 64,
        patch_size: int = 8,
        dim: int = 64,
        depth: int = 4,
        heads: int = 4,
        mlp_dim: int = 128,
        stem_channels: int = 0,
    ) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size ({image_size}) must be a multiple of patch_size")
        self.image_size = image_size
        n_patches = (image_size // patch_size) ** 2
        self.patch_embedding = _patch_embedding(dim, patch_size, stem_channels)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.position_embedding = nn.Parameter(0.02 * torch.randn(1, n_patches + 1, dim))
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1:] != (3, self.image_size, self.image_size):
            raise ValueError(
                f"images must have shape [n, 3, {self.image_size}, {self.image_size}], "
                f"got {list(images.shape)}; pass the images returned by make_batch"
            )
        patches = self.patch_embedding(images).flatten(2).transpose(1, 2)  # [n, patches, dim]
        cls = self.cls_token.expand(images.shape[0], -1, -1)
        x = torch.cat([cls, patches], dim=1) + self.position_embedding
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, 0]))


class TextTransformer(nn.Module):
    """A small transformer encoder classifying token sequences (layout in the module docstring).

    Parameters
    ----------
    vocab_size:
        Number of token ids.
    n_classes:
        Number of output logits.
    max_length:
        Longest sequence accepted (size of the learned position embedding).
    dim, depth, heads, mlp_dim:
        Token width, number of blocks, attention heads per block, MLP hidden width.
    """

    def __init__(
        self,
        vocab_size: int,
        n_classes: int,
        max_length: int = 32,
        dim: int = 32,
        depth: int = 2,
        heads: int = 2,
        mlp_dim: int = 64,
    ) -> None:
        super().__init__()
        self.max_length = max_length
        self.token_embedding = nn.Embedding(vocab_size, dim)
        self.position_embedding = nn.Parameter(0.02 * torch.randn(1, max_length, dim))
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings ``[n, length, dim]`` of token ids ``[n, length]`` (int64).

        Raises
        ------
        ValueError
            If ``ids`` is not a 2-d integer tensor of ids below the vocabulary size.
        """
        vocab_size = self.token_embedding.num_embeddings
        if ids.dim() != 2 or ids.is_floating_point() or ids.is_complex():
            raise ValueError(
                f"ids must be an integer tensor [n, length], got {ids.dtype} "
                f"{list(ids.shape)}; encode text with the demo tokenizer"
            )
        if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
            raise ValueError(
                f"ids must lie in [0, {vocab_size}), got values in "
                f"[{int(ids.min())}, {int(ids.max())}]; encode text with the demo tokenizer"
            )
        return self.token_embedding(ids)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits ``[n, n_classes]`` of ids ``[n, length]`` or embeddings ``[n, length, dim]``."""
        if inputs.is_floating_point():
            return self.forward_embeddings(inputs)
        return self.forward_embeddings(self.embed(inputs))

    def forward_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Logits ``[n, n_classes]`` of token embeddings ``[n, length, dim]``.

        Raises
        ------
        ValueError
            If ``embeddings`` does not have shape ``[n, length, dim]`` with ``length`` at most
            ``max_length``.
        """
        dim = self.token_embedding.embedding_dim
        if embeddings.dim() != 3 or embeddings.shape[-1] != dim:
            raise ValueError(
                f"embeddings must have shape [n, length, {dim}], got {list(embeddings.shape)}; "
                "get them from model.embed(ids)"
            )
        length = embeddings.shape[1]
        if not 1 <= length <= self.max_length:
            raise ValueError(
                f"sequences must have 1 to {self.max_length} tokens, got {length}; "
                "shorten the input"
            )
        x = embeddings + self.position_embedding[:, :length]
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x).mean(dim=1))
