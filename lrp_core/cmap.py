"""Colour maps written in a small source language, and the registry of built-in maps.

Source language
---------------
A colour map source is a comma-separated list of at least two nodes (one trailing comma is
allowed). Each node is a colour written as 3 or 6 hexadecimal digits (``f00`` or ``ff0000``),
optionally preceded by a palette index and a colon: ``80:fff``. Indices are **hexadecimal** like
the colours, 1 or 2 digits, ``0`` to ``ff`` (0 to 255); a one-digit index ``d`` means ``dd``, as
the digits of a 3-digit colour do. Whitespace between tokens is ignored. Anything else (``#``,
other characters, 4-digit colours, an index without a colour) is a
:class:`ColorMapSyntaxError`, a ``RuntimeError`` as in the reference library (and a
``ValueError``).

Nodes without an index are spread evenly: the first one sits at index 0, the last one at 255,
and a run of unindexed nodes between two indexed ones divides that interval into equal parts
(positions rounded down to whole indices). Indices must not decrease from node to node. The
256-entry palette is obtained by linear interpolation between the nodes (per RGB channel),
truncated to whole values; before the first and after the last node the palette holds that
node's colour. The language, rounding and the built-in maps follow the reference library exactly.

Examples: ``"000,fff"`` (black to white), ``"00f,fff,f00"`` (blue, white, red), and
``"0:000,40:f00,ff:fff"`` (black, red at index 64, white).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import NamedTuple

import numpy as np

__all__ = [
    "BUILTIN_SOURCES",
    "CMAPS",
    "CMapToken",
    "ColorMap",
    "ColorMapSyntaxError",
    "ColorNode",
    "LazyColorMapCache",
    "parse_nodes",
    "parse_source",
    "tokenize",
]

PALETTE_SIZE = 256
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")

#: Sources of the built-in colour maps, one line each. The colours and node positions reproduce
#: the reference library's palettes exactly (checked in tests/lrp_core/test_zennit_parity_image.py);
#: diverging maps put their middle colour at index 0x80.
BUILTIN_SOURCES: dict[str, str] = {
    # black -> white
    "gray": "000,fff",
    # white -> red (for non-negative maps)
    "wred": "fff,f00",
    # white -> blue (for non-negative maps)
    "wblue": "fff,00f",
    # black -> red -> yellow -> white
    "hot": "000,f00,ff0,fff",
    # black -> blue -> cyan
    "cold": "000,00f,0ff",
    # cyan -> blue -> black (middle) -> red -> yellow -> white
    "coldnhot": "0ff,00f,80:000,f00,ff0,fff",
    # blue -> white (middle) -> red
    "bwr": "00f,80:fff,f00",
    # the French flag: flag blue -> white (middle) -> flag red
    "france": "0055a4,80:fff,ef4135",
    # muted blue -> light grey (middle) -> muted red
    "seismic": "0000d0,80:d0d0d0,d00000",
    # muted cyan -> light grey (middle) -> muted magenta
    "coolio": "00d0d0,80:d0d0d0,d000d0",
    # muted green -> light grey (middle) -> muted magenta
    "coleus": "00d000,80:d0d0d0,d000d0",
}


class CMapToken(NamedTuple):
    """A token of a colour map source: its ``type`` (``"longcolor"``, ``"shortcolor"``,
    ``"index"``, ``"adsep"``, ``"sep"``, ``"whitespace"`` or ``"error"``), text and position."""

    type: str
    value: str
    pos: int


class ColorNode(NamedTuple):
    """A parsed node of a colour map: palette ``index`` (0..255) and RGB ``value`` (0..255)."""

    index: int
    value: np.ndarray


class ColorMapSyntaxError(RuntimeError, ValueError):
    """A colour map source does not follow the colour map language (see the module docstring)."""


def tokenize(source: str) -> list[CMapToken]:
    """Split a colour map source into tokens (whitespace and unknown text included).

    A run of hexadecimal digits is cut from the left into colours of 6 digits, then 3 digits, and
    a remainder of 1 or 2 digits, which is an index; anything that is no token starts an
    ``"error"`` token reaching to the end of its line.
    """
    if not isinstance(source, str):
        raise TypeError(f"A colour map source must be a string, got {type(source).__name__}.")
    tokens, pos = [], 0
    while pos < len(source):
        char = source[pos]
        if char.isspace():
            end = pos
            while end < len(source) and source[end].isspace():
                end += 1
            kind = "whitespace"
        elif char in _HEX_DIGITS:
            run = 0
            while pos + run < len(source) and source[pos + run] in _HEX_DIGITS:
                run += 1
            width, kind = (
                (6, "longcolor") if run >= 6 else (3, "shortcolor") if run >= 3 else (run, "index")
            )
            end = pos + width
        elif char in ":,":
            end, kind = pos + 1, "adsep" if char == ":" else "sep"
        else:
            newline = source.find("\n", pos)
            end, kind = (len(source) if newline < 0 else newline), "error"
        tokens.append(CMapToken(kind, source[pos:end], pos))
        pos = end
    return tokens


def _node_text(source: str, pos: int) -> str:
    """The comma-separated node of ``source`` around position ``pos``."""
    start = (
        source.rfind(",", 0, pos) + 1
        if pos < len(source)
        else source.rstrip(", \t\n").rfind(",") + 1
    )
    end = source.find(",", max(pos, start))
    return source[start : len(source) if end < 0 else end].strip()


def _syntax_error(source: str, token: CMapToken | None, expected: str) -> ColorMapSyntaxError:
    pos = len(source) if token is None else token.pos
    node = _node_text(source, pos)
    where = f"in node {node!r}" if node else "(empty node)"
    return ColorMapSyntaxError(
        f"Colour map source {source!r}: expected {expected} {where}. Write comma-separated "
        "colours of 3 or 6 hex digits, each optionally preceded by a hex index and ':', "
        "e.g. '00f,80:fff,f00'."
    )


def parse_nodes(source: str) -> list[tuple[int | None, np.ndarray]]:
    """Parse a source into ``(index or None, rgb)`` nodes; raise :class:`ColorMapSyntaxError`.

    Grammar: ``node ("," node)* [","]`` with at least two nodes, ``node = [index ":"] colour``.
    A one-digit index ``d`` stands for ``dd`` (like the digits of a 3-digit colour).
    """
    tokens = [token for token in tokenize(source) if token.type != "whitespace"]
    nodes: list[tuple[int | None, np.ndarray]] = []
    pos = 0
    while pos < len(tokens):
        index = None
        if tokens[pos].type == "index":
            if pos + 1 >= len(tokens) or tokens[pos + 1].type != "adsep":
                raise _syntax_error(
                    source, tokens[pos + 1] if pos + 1 < len(tokens) else None, "':'"
                )
            digits = tokens[pos].value
            index, pos = int(digits * 2 if len(digits) == 1 else digits, 16), pos + 2
        token = tokens[pos] if pos < len(tokens) else None
        if token is None or token.type not in ("longcolor", "shortcolor"):
            raise _syntax_error(source, token, "a colour")
        digits = token.value if len(token.value) == 6 else "".join(c * 2 for c in token.value)
        rgb = np.array([int(digits[at : at + 2], 16) for at in (0, 2, 4)], dtype=np.float64)
        nodes.append((index, rgb))
        pos += 1
        if pos < len(tokens) and tokens[pos].type != "sep":
            raise _syntax_error(source, tokens[pos], "','")
        pos += 1
    if len(nodes) < 2:
        raise _syntax_error(source, None, "at least two colours")
    return nodes


def parse_source(source: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse a colour map source into node positions and node colours.

    Parameters
    ----------
    source:
        Comma-separated ``[index:]colour`` tokens, see the module docstring.

    Returns
    -------
    positions, colours:
        Float arrays of shape (K,) with positions in 0..255 (non-decreasing) and (K, 3) with RGB
        values in 0..255.

    Raises
    ------
    TypeError
        If ``source`` is not a string.
    ColorMapSyntaxError
        (a ``RuntimeError`` and a ``ValueError``) if the source is malformed or its indices
        decrease; the message names the position.
    """
    nodes = parse_nodes(source)
    texts = [text.strip() for text in source.split(",")]
    positions = _spread_positions([index for index, _ in nodes], texts, source)
    return positions, np.stack([rgb for _, rgb in nodes])


def _spread_positions(indices: list[int | None], tokens: list[str], source: str) -> np.ndarray:
    """Place unindexed nodes evenly between their indexed neighbours (or the ends 0 and 255)."""
    count = len(indices)
    anchors = dict(enumerate(indices))
    if anchors[0] is None:
        anchors[0] = 0
    if anchors[count - 1] is None:
        anchors[count - 1] = PALETTE_SIZE - 1
    known = [(pos, value) for pos, value in anchors.items() if value is not None]

    for (_, value_a), (pos_b, value_b) in itertools.pairwise(known):
        if value_b < value_a:
            raise ColorMapSyntaxError(
                f"Colour map source {source!r}: node {tokens[pos_b]!r} is placed at index "
                f"{value_b:x}, below the previous node's index {value_a:x}: indices must not "
                "decrease."
            )

    positions = np.empty(count, dtype=np.float64)
    for (pos_a, value_a), (pos_b, value_b) in itertools.pairwise(known):
        steps = pos_b - pos_a
        for offset in range(steps + 1):
            # whole palette indices, rounded down (as in the reference library)
            positions[pos_a + offset] = value_a + (value_b - value_a) * offset // max(steps, 1)
    if count == 1:
        positions[0] = anchors[0]
    return positions


class ColorMap:
    """A 256-entry colour map built from a source string (see the module docstring).

    Parameters
    ----------
    source:
        The colour map source, e.g. ``"00f,fff,f00"``.

    Attributes
    ----------
    source:
        The source string the map was built from.
    """

    def __init__(self, source: str) -> None:
        self.source = source

    @property
    def source(self) -> str:
        """The source string; assigning a new one recompiles the map (a bad one changes nothing)."""
        return self._source

    @source.setter
    def source(self, source: str) -> None:
        positions, colours = parse_source(source)
        grid = np.arange(PALETTE_SIZE, dtype=np.float64)
        # float palette in 0..1, shape (256, 3)
        self._palette = _interpolate(grid, positions, colours) / 255.0
        self._nodes, self._colours, self._source = positions, colours, source

    def __repr__(self) -> str:
        return f"ColorMap({self.source!r})"

    def __call__(self, values: object) -> np.ndarray:
        """Map values in [0, 1] to RGB colours.

        Parameters
        ----------
        values:
            Array-like (numpy array or torch tensor) of any shape with values in [0, 1]; values
            outside are clipped. A value ``v`` sits at palette position ``255 v`` and gets the
            linear interpolation of the two neighbouring nodes there (not truncated to whole
            palette entries, unlike :meth:`palette`), as in the reference library.

        Returns
        -------
        numpy.ndarray
            Float64 RGB values in [0, 1], shape ``values.shape + (3,)``.

        Raises
        ------
        ValueError
            If ``values`` contains NaN or infinity.
        """
        array = _as_float_array(values)
        if not np.isfinite(array).all():
            raise ValueError(
                "ColorMap values contain NaN or infinity: replace them first, e.g. with "
                "numpy.nan_to_num."
            )
        position = np.clip(array, 0.0, 1.0).reshape(-1) * (PALETTE_SIZE - 1)
        colours = _interpolate(position, self._nodes, self._colours) / 255.0
        return colours.reshape(array.shape + (3,))

    def palette(self, level: float = 1.0) -> np.ndarray:
        """Return the palette as a (256, 3) uint8 array.

        Parameters
        ----------
        level:
            Contrast around the middle of the map: entry ``i`` takes the colour at palette
            position ``clip((i - 127.5) * level + 127.5, 0, 255)`` (interpolated, truncated).
            ``1.0`` gives the map itself, values above 1 saturate sooner, values below 1 stay
            closer to the middle colour.

        Raises
        ------
        ValueError
            If ``level`` is not a positive finite number.
        """
        if not isinstance(level, (int, float)) or not np.isfinite(level) or level <= 0:
            raise ValueError(f"level must be a positive finite number, got {level!r}.")
        middle = (PALETTE_SIZE - 1) / 2
        # palette coordinates, computed on the 0..255 scale so that level 1 gives whole indices
        grid = np.clip((np.arange(PALETTE_SIZE) - middle) * level + middle, 0, PALETTE_SIZE - 1)
        rgb = _interpolate(grid, self._nodes, self._colours)
        # truncated to whole values, as in the reference library
        return np.floor(rgb).astype(np.uint8)


def _interpolate(grid: np.ndarray, positions: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Colours at ``grid`` by linear interpolation between the nodes, shape (len(grid), 3).

    ``(c_a (p_b - x) + c_b (x - p_a)) / (p_b - p_a)`` on the segment ``p_a <= x < p_b``: with
    whole positions and colours the numerator is exact, so whole results stay whole before
    truncation. Outside the nodes, and from the last of equal positions on, the end colour holds.
    """
    segment = np.searchsorted(positions, grid, side="right") - 1
    last = len(positions) - 1
    inside = (segment >= 0) & (segment < last)
    start = np.clip(segment, 0, last - 1)
    p_a, p_b = positions[start][:, None], positions[start + 1][:, None]
    x = grid[:, None]
    width = np.where(inside[:, None], p_b - p_a, 1.0)
    blended = (colours[start] * (p_b - x) + colours[start + 1] * (x - p_a)) / width
    ends = np.where((segment < 0)[:, None], colours[0], colours[last])
    return np.where(inside[:, None], blended, ends)


def _as_float_array(values: object) -> np.ndarray:
    """Convert a numpy array, torch tensor or nested sequence to a float64 numpy array."""
    if hasattr(values, "detach") and hasattr(
        values, "cpu"
    ):  # torch tensor, without importing torch
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


class LazyColorMapCache(Mapping[str, ColorMap]):
    """A name -> :class:`ColorMap` registry that parses each source only on first use.

    Parameters
    ----------
    sources:
        Mapping from map names to colour map sources.

    Assigning a source to a new name stores it (parsed on first use); assigning to a name whose
    map was already built recompiles that same :class:`ColorMap` object (``source = ...``), so
    maps handed out before see the change and a bad source raises right away and changes
    nothing. ``del cache[name]`` removes a map.
    """

    def __init__(self, sources: Mapping[str, str]) -> None:
        self._sources: dict[str, str] = dict(sources)
        self._maps: dict[str, ColorMap] = {}

    def __getitem__(self, name: str) -> ColorMap:
        if name not in self._sources:
            raise KeyError(
                f"No colour map named {name!r}; available: {', '.join(sorted(self._sources))}."
            )
        if name not in self._maps:
            self._maps[name] = ColorMap(self._sources[name])
        return self._maps[name]

    def __setitem__(self, name: str, source: str) -> None:
        """Register a colour map source, or recompile the already built map of ``name``."""
        if name in self._maps:
            self._maps[name].source = source
        self._sources[name] = source

    def __delitem__(self, name: str) -> None:
        """Remove the colour map ``name``; ``KeyError`` if there is none."""
        if name not in self._sources:
            raise KeyError(name)
        del self._sources[name]
        self._maps.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)

    def __contains__(self, name: object) -> bool:
        return name in self._sources


#: The built-in colour maps by name.
CMAPS = LazyColorMapCache(BUILTIN_SOURCES)
