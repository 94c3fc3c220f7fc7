"""Masked payee names: enough for a payer to recognise the payee, never the whole name."""

from __future__ import annotations

import unicodedata


def _is_cjk(char: str) -> bool:
    return unicodedata.name(char, "").startswith(("CJK UNIFIED", "CJK COMPATIBILITY"))


def mask_name(name: str) -> str:
    """ "CHAN Tai Man" -> "CHAN T** M**"; "张小明" -> "张*明"; "Madonna" -> "M******".

    Latin names keep the first word (the surname, as FPS shows it) and the initial of every other
    word; a one-word name keeps only its initial. Chinese names keep the first and last character.
    """
    text = " ".join(name.split())
    if not text:
        return "*"
    if any(_is_cjk(c) for c in text):
        chars = [c for c in text if not c.isspace()]
        if len(chars) <= 2:
            return chars[0] + "*"
        return chars[0] + "*" * (len(chars) - 2) + chars[-1]
    words = text.upper().split(" ")
    if len(words) == 1:
        word = words[0]
        return word[0] + "*" * max(len(word) - 1, 2)
    return " ".join([words[0], *(w[0] + "*" * max(len(w) - 1, 2) for w in words[1:])])
