"""Colour maps written in a small source language, and the registry of built-in maps.

Source language
---------------
A colour map source is a comma-separated list of nodes. Each node is a colour written as 3 or 6
hexadecimal digits (``f00`` or ``ff0000``, an optional leading ``#`` is allowed), optionally
preceded by a palette index and a colon: ``80:fff``. Indices are **hexadecimal** like the colours,
``0`` to ``ff`` (0 to 255). Whitespace around tokens is ignored.

Nodes without an index are spread evenly: the first one sits at index 0, the last one at 255,
and a run of unindexed nodes between two indexed ones divides that interval into equal parts
(positions rounded down to whole indices). Indices must increase from node to node. The
256-entry palette is obtained by linear interpolation between the nodes (per RGB channel),
truncated to whole values; before the first and after the last node the palette holds that
node's colour. Rounding and the built-in maps follow the reference library exactly.

Examples: ``"000,fff"`` (black to white), ``"00f,fff,f00"`` (blue, white, red), and
``"0:000,40:f00,ff:fff"`` (black, red at index 64, white).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping

import numpy as np

__all__ = ["BUILTIN_SOURCES", "CMAPS", "ColorMap", "LazyColorMapCache", "parse_source"]

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


def _parse_colour(token: str, text: str) -> np.ndarray:
    """Parse ``text`` (3 or 6 hex digits, optional ``#``) into an RGB float array in 0..255."""
    digits = text[1:] if text.startswith("#") else text
    if len(digits) not in (3, 6) or not set(digits) <= _HEX_DIGITS:
        raise ValueError(
            f"Bad colour {text!r} in colour map token {token!r}: write a colour as 3 or 6 "
            "hexadecimal digits, e.g. 'f00' or 'ff0000'."
        )
    if len(digits) == 3:
        digits = "".join(char * 2 for char in digits)
    return np.array([int(digits[pos : pos + 2], 16) for pos in (0, 2, 4)], dtype=np.float64)


def _parse_index(token: str, text: str) -> int:
    """Parse a hexadecimal palette index ``text`` (0..ff)."""
    if not text or len(text) > 2 or not set(text) <= _HEX_DIGITS:
        raise ValueError(
            f"Bad index {text!r} in colour map token {token!r}: an index is a hexadecimal "
            "number from 0 to ff, written before the colour as in '80:fff'."
        )
    return int(text, 16)


def parse_source(source: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse a colour map source into node positions and node colours.

    Parameters
    ----------
    source:
        Comma-separated ``[index:]colour`` tokens, see the module docstring.

    Returns
    -------
    positions, colours:
        Float arrays of shape (K,) with positions in 0..255 (increasing) and (K, 3) with RGB
        values in 0..255.

    Raises
    ------
    TypeError
        If ``source`` is not a string.
    ValueError
        If a token is malformed or the indices do not increase; the message names the token.
    """
    if not isinstance(source, str):
        raise TypeError(f"A colour map source must be a string, got {type(source).__name__}.")
    tokens = [token.strip() for token in source.split(",")]
    if not any(tokens):
        raise ValueError("Empty colour map source: give at least one colour, e.g. '000,fff'.")

    indices: list[int | None] = []
    colours: list[np.ndarray] = []
    for number, token in enumerate(tokens):
        if not token:
            raise ValueError(
                f"Empty token at position {number} of colour map source {source!r}: "
                "remove the extra comma."
            )
        index_text, colon, colour_text = token.rpartition(":")
        indices.append(_parse_index(token, index_text.strip()) if colon else None)
        colours.append(_parse_colour(token, colour_text.strip()))

    positions = _spread_positions(indices, tokens)
    return positions, np.stack(colours)


def _spread_positions(indices: list[int | None], tokens: list[str]) -> np.ndarray:
    """Place unindexed nodes evenly between their indexed neighbours (or the ends 0 and 255)."""
    count = len(indices)
    anchors = dict(enumerate(indices))
    if anchors[0] is None:
        anchors[0] = 0
    if anchors[count - 1] is None:
        anchors[count - 1] = PALETTE_SIZE - 1
    known = [(pos, value) for pos, value in anchors.items() if value is not None]

    for (_, value_a), (pos_b, value_b) in itertools.pairwise(known):
        if value_b <= value_a:
            raise ValueError(
                f"Colour map token {tokens[pos_b]!r} has index {value_b:x}, which does not "
                f"exceed the previous node's index {value_a:x}: indices must increase."
            )

    positions = np.empty(count, dtype=np.float64)
    for (pos_a, value_a), (pos_b, value_b) in itertools.pairwise(known):
        steps = pos_b - pos_a
        for offset in range(steps + 1):
            # whole palette indices, rounded down (as in the reference library)
            positions[pos_a + offset] = value_a + (value_b - value_a) * offset // steps
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
        positions, colours = parse_source(source)
        self.source = source
        self._nodes, self._colours = positions, colours
        grid = np.arange(PALETTE_SIZE, dtype=np.float64)
        # float palette in 0..1, shape (256, 3)
        self._palette = (
            np.stack([np.interp(grid, positions, colours[:, ch]) for ch in range(3)], axis=1)
            / 255.0
        )

    def __repr__(self) -> str:
        return f"ColorMap({self.source!r})"

    def __call__(self, values: object) -> np.ndarray:
        """Map values in [0, 1] to RGB colours.

        Parameters
        ----------
        values:
            Array-like (numpy array or torch tensor) of any shape with values in [0, 1]; values
            outside are clipped. Each value picks palette entry ``floor(255 * value)``, the
            entry ``imgify`` uses for the same value.

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
        index = np.floor(np.clip(array, 0.0, 1.0) * (PALETTE_SIZE - 1)).astype(np.intp)
        return self._palette[index]

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
        rgb = np.stack([np.interp(grid, self._nodes, self._colours[:, ch]) for ch in range(3)], 1)
        # truncated to whole values, as in the reference library
        return np.floor(rgb).astype(np.uint8)


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
        """Register (or replace) a colour map from its source; it is parsed right away."""
        colour_map = ColorMap(source)
        self._sources[name] = source
        self._maps[name] = colour_map

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)

    def __contains__(self, name: object) -> bool:
        return name in self._sources


#: The built-in colour maps by name.
CMAPS = LazyColorMapCache(BUILTIN_SOURCES)
