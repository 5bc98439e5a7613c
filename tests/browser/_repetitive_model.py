"""A synthetic repetitive model for the layer-tree browser test and ``benchmarks/bench_tree.py``.

``MODEL_SOURCE`` is Python source (run in the notebook's kernel) defining
``build_repetitive_model()``: ``stem`` (Linear), ``blocks`` (a ModuleList of ``BLOCKS`` identical
``Block``s, each a ModuleList ``units`` of ``UNITS`` identical residual ``Unit``s of three Linear
+ ReLU pairs; the blocks run side by side on the stem's output and are averaged) and ``head``
(Linear, 3 classes), on inputs ``[N, 8]``. The layer tree then has
``MODULE_ROWS`` module rows and, fully expanded, ``GROUP_ROWS`` more group rows (``blocks`` and
each block's ``blocks.<i>.units``).
"""

from __future__ import annotations

BLOCKS = 40
UNITS = 8
LEAVES_PER_UNIT = 6  # fc1, act1, fc2, act2, fc3, act3
# per block: the block, its units list, each unit and its leaves; plus stem, blocks, head
MODULE_ROWS = 3 + BLOCKS * (2 + UNITS * (1 + LEAVES_PER_UNIT))
GROUP_ROWS = 1 + BLOCKS

MODEL_SOURCE = f"""\
import torch
from torch import nn


class Unit(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.act1 = nn.Linear(8, 8), nn.ReLU()
        self.fc2, self.act2 = nn.Linear(8, 8), nn.ReLU()
        self.fc3, self.act3 = nn.Linear(8, 8), nn.ReLU()

    def forward(self, x):
        y = self.act1(self.fc1(x))
        y = self.act2(self.fc2(y))
        return x + self.act3(self.fc3(y))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.units = nn.ModuleList(Unit() for _ in range({UNITS}))

    def forward(self, x):
        for unit in self.units:
            x = unit(x)
        return x


class Repetitive(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(8, 8)
        self.blocks = nn.ModuleList(Block() for _ in range({BLOCKS}))
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        x = self.stem(x)
        return self.head(sum(block(x) for block in self.blocks) / len(self.blocks))


def build_repetitive_model():
    torch.manual_seed(0)
    return Repetitive().eval()
"""
