from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fpslink.directory.masking import mask_name


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("CHAN Tai Man", "CHAN T** M**"),
        ("WONG Siu Ming", "WONG S** M***"),
        ("张小明", "张*明"),
        ("欧阳小明", "欧**明"),
        ("李娜", "李*"),
        ("李", "李*"),
        ("张 小明", "张*明"),  # spaces inside a Chinese name are ignored
        ("Madonna", "M******"),
        ("Al", "A**"),  # a short word still shows at least two stars
        ("madonna", "M******"),
        ("chan tai man", "CHAN T** M**"),
        ("  CHAN   Tai\tMan  ", "CHAN T** M**"),
        ("CHAN\nTai Man", "CHAN T** M**"),
        ("LEE Ka Yi", "LEE K** Y**"),
    ],
)
def test_mask_name_examples(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_mask_name_of_nothing_is_a_star(name: str) -> None:
    assert mask_name(name) == "*"


def _normalise(name: str) -> str:
    return " ".join(name.split()).upper()


latin_word = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)
latin_names = st.lists(latin_word, min_size=1, max_size=5).map(" ".join)
cjk_char = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
cjk_names = st.text(alphabet=cjk_char, min_size=2, max_size=6)
# any cased letter outside the CJK blocks (accented Latin, Greek, Cyrillic, ...)
unicode_word = st.text(
    alphabet=st.characters(categories=("Lu", "Ll"), max_codepoint=0x2FFF), min_size=1, max_size=10
)
unicode_names = st.lists(unicode_word, min_size=1, max_size=4).map(" ".join)


@settings(max_examples=200, deadline=None, database=None)
@given(st.one_of(latin_names, unicode_names))
def test_latin_mask_never_reveals_more_than_the_first_word(name: str) -> None:
    assume(sum(c.isalpha() for c in name) >= 2)
    masked = mask_name(name)
    full = _normalise(name)
    words = full.split(" ")
    assert masked != full
    assert "*" in masked
    if len(words) == 1:
        # a one-word name shows only its initial
        assert masked[0] == words[0][0]
        assert set(masked[1:]) == {"*"}
        assert words[0] not in masked or len(words[0]) < 2
        return
    first, rest = words[0], words[1:]
    assert masked.split(" ")[0] == first
    tail = masked[len(first) :]
    for word in rest:
        if len(word) >= 2 and word != first:
            assert word not in tail
    for shown, word in zip(masked.split(" ")[1:], rest, strict=True):
        assert shown[0] == word[0]
        assert set(shown[1:]) == {"*"}


@settings(max_examples=200, deadline=None, database=None)
@given(cjk_names)
def test_cjk_mask_never_reveals_the_name(name: str) -> None:
    masked = mask_name(name)
    assert masked != name
    assert name not in masked
    assert masked[0] == name[0]
    # at most the first and the last character are shown
    assert sum(c != "*" for c in masked) == min(2, len(name) - 1)
    for i in range(len(name) - 1):
        assert name[i : i + 2] not in masked
    if len(name) > 2:
        assert len(masked) == len(name)
        assert masked[-1] == name[-1]
    else:
        assert masked == name[0] + "*"


@settings(max_examples=100, deadline=None, database=None)
@given(latin_names)
def test_mask_is_insensitive_to_case_and_spacing(name: str) -> None:
    noisy = "  " + "   ".join(name.lower().split(" ")) + "\t"
    assert mask_name(noisy) == mask_name(name.upper()) == mask_name(name)
