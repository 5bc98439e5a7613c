"""Tests for lrp_core.cmap: the colour map source language and the built-in maps.

Reference semantics (those of the reference library, which decide where the issue is silent):
nodes ``[index:]colour`` with hexadecimal indices; unindexed nodes spread evenly between indexed
neighbours (first at 0, last at 255), at whole indices rounded down; palette entry i is the
per-channel linear interpolation ``c_a + (c_b - c_a) * (t - p_a) / (p_b - p_a)`` between the
nodes around ``t = clip((i - 127.5) * level + 127.5, 0, 255)``, truncated to uint8.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrp_core.cmap import BUILTIN_SOURCES, CMAPS, ColorMap, LazyColorMapCache, parse_source


def test_short_and_long_hex_are_the_same_colour():
    _, colours = parse_source("f80, ff8800")
    np.testing.assert_array_equal(colours, [[255, 136, 0], [255, 136, 0]])


def test_one_digit_index_repeats_its_digit():
    # as the digits of a 3-digit colour: index 8 means 0x88 (which is why "8:fff,80:000" is bad)
    positions, _ = parse_source("8:000, fff")
    np.testing.assert_array_equal(positions, [0x88, 255])


def test_unindexed_nodes_spread_evenly_between_ends():
    positions, _ = parse_source("000,f00,0f0,00f")
    np.testing.assert_allclose(positions, [0, 85, 170, 255])
    pal = ColorMap("000,f00,0f0,00f").palette()
    np.testing.assert_array_equal(
        pal[[0, 85, 170, 255]], [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]
    )


def test_unindexed_nodes_spread_between_indexed_neighbours():
    # 20 (hex) = 32 and ff = 255: the single unindexed node sits at floor((32 + 255) / 2) = 143
    positions, _ = parse_source("20:fff, 000, ff:f00")
    np.testing.assert_allclose(positions, [32, 143, 255])
    pal = ColorMap("20:fff,000,ff:f00").palette()
    # before the first node the palette holds the first colour
    np.testing.assert_array_equal(pal[:33], np.full((33, 3), 255))


def test_linear_interpolation_at_known_points():
    # nodes black at 0 and red at 0x33 = 51: entry 17 = 255 * 17 / 51 = 85, entry 34 = 170
    pal = ColorMap("0:000,33:f00,ff:fff").palette()
    np.testing.assert_array_equal(pal[17], [85, 0, 0])
    np.testing.assert_array_equal(pal[34], [170, 0, 0])
    np.testing.assert_array_equal(pal[51], [255, 0, 0])
    # between red (51) and white (255): entry 153 is half way, green/blue = 127.5 -> 127 (floor)
    assert pal[153, 0] == 255 and pal[153, 1] == 127


def test_gray_is_the_identity_ramp():
    pal = CMAPS["gray"].palette()
    np.testing.assert_array_equal(pal, np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1))


def test_call_maps_values_to_palette_entries_and_accepts_tensors():
    cmap = CMAPS["gray"]
    values = np.array([[0.0, 0.5], [1.0, 2.0]])
    # position 255 v, v clipped to [0, 1], interpolated between the nodes: 0, 127.5, 255, 255
    expected = np.array([[0, 127.5], [255, 255]])[..., None].repeat(3, -1) / 255
    np.testing.assert_allclose(cmap(values), expected)
    np.testing.assert_allclose(cmap(torch.tensor(values)), expected)
    with pytest.raises(ValueError, match="NaN"):
        cmap(np.array([np.nan]))


def test_level_stretches_around_the_middle():
    cmap = CMAPS["bwr"]
    base = cmap.palette()
    np.testing.assert_array_equal(cmap.palette(level=1.0), base)
    strong = cmap.palette(level=2.0)
    # entry i takes the colour at clip((i/255 - 0.5) * 2 + 0.5): the first quarter is saturated
    np.testing.assert_array_equal(strong[:63], np.repeat(base[:1], 63, 0))
    np.testing.assert_array_equal(strong[-63:], np.repeat(base[-1:], 63, 0))
    with pytest.raises(ValueError, match="level"):
        cmap.palette(level=0)


# end (and middle, at entry 0x80) colours of every built-in map, as in the reference library
BUILTIN_ENDS = {
    "gray": ("000000", "ffffff", None),
    "wred": ("ffffff", "ff0000", None),
    "wblue": ("ffffff", "0000ff", None),
    "hot": ("000000", "ffffff", None),
    "cold": ("000000", "00ffff", None),
    "coldnhot": ("00ffff", "ffffff", "000000"),
    "bwr": ("0000ff", "ff0000", "ffffff"),
    "france": ("0055a4", "ef4135", "ffffff"),
    "seismic": ("0000d0", "d00000", "d0d0d0"),
    "coolio": ("00d0d0", "d000d0", "d0d0d0"),
    "coleus": ("00d000", "d000d0", "d0d0d0"),
}


def _rgb(hex_colour):
    return [int(hex_colour[pos : pos + 2], 16) for pos in (0, 2, 4)]


@pytest.mark.parametrize("name", sorted(BUILTIN_SOURCES))
def test_builtin_maps_have_256_entries_and_their_end_colours(name):
    assert set(BUILTIN_ENDS) == set(BUILTIN_SOURCES)
    pal = CMAPS[name].palette()
    assert pal.shape == (256, 3) and pal.dtype == np.uint8
    first, last, middle = BUILTIN_ENDS[name]
    np.testing.assert_array_equal(pal[0], _rgb(first))
    np.testing.assert_array_equal(pal[-1], _rgb(last))
    if middle is not None:  # the middle node sits at entry 0x80 = 128
        np.testing.assert_array_equal(pal[128], _rgb(middle))
    assert CMAPS[name].source == BUILTIN_SOURCES[name]


def test_hot_passes_red_and_yellow():
    pal = CMAPS["hot"].palette()
    np.testing.assert_array_equal(pal[85], [255, 0, 0])
    np.testing.assert_array_equal(pal[170], [255, 255, 0])


@pytest.mark.parametrize(
    ("source", "token"),
    [
        ("000,ggg", "ggg"),
        ("000,ffff", "ffff"),
        ("zz:000,fff", "zz:000"),
        ("1ff:000,fff", "1ff:000"),
        ("000,80:", "80:"),
        ("80:fff,40:000", "40:000"),
        ("000,40:f00,30:fff", "30:fff"),
        ("#000,fff", "#000"),
        ("000", "000"),
    ],
)
def test_bad_sources_name_the_token(source, token):
    with pytest.raises(ValueError, match=f"'{token}'"):
        ColorMap(source)


@pytest.mark.parametrize("source", ["", " , ", "000,,fff", ",000,fff", "000,fff,,"])
def test_empty_nodes_are_rejected(source):
    with pytest.raises(RuntimeError, match="empty node"):
        ColorMap(source)


def test_one_trailing_comma_is_allowed():
    assert ColorMap("000,fff,").source == "000,fff,"


def test_non_string_source_is_a_type_error():
    with pytest.raises(TypeError, match="string"):
        ColorMap(123)


def test_cache_is_lazy_and_names_unknown_maps():
    cache = LazyColorMapCache({"ok": "000,fff", "broken": "000,xyz"})
    assert set(cache) == {"ok", "broken"} and len(cache) == 2
    assert cache["ok"] is cache["ok"]
    with pytest.raises(ValueError, match="xyz"):
        cache["broken"]
    with pytest.raises(KeyError, match="available"):
        cache["nope"]
    cache["mine"] = "00f,f00"
    assert cache["mine"].source == "00f,f00"


colours = st.lists(st.integers(0, 0xFFFFFF), min_size=2, max_size=6)


@settings(max_examples=40, deadline=None)
@given(colours)
def test_palette_passes_through_nodes_and_stays_between_them(values):
    # with K nodes spread evenly, node k sits at 255 k / (K - 1); where that is an integer
    # the palette entry equals the node colour; every entry lies within the node range
    source = ",".join(f"{value:06x}" for value in values)
    pal = ColorMap(source).palette().astype(int)
    nodes = np.array([[(value >> shift) & 0xFF for shift in (16, 8, 0)] for value in values])
    assert (pal >= nodes.min(0)).all() and (pal <= nodes.max(0)).all()
    for k, node in enumerate(nodes):
        position = 255 * k / (len(values) - 1)
        if position == int(position):
            np.testing.assert_array_equal(pal[int(position)], node)
