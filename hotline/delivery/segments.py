"""How many SMS segments a text costs (GSM-7 160/153, UCS-2 70/67) and cutting a text to fit."""

from __future__ import annotations

GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = set("^{}\\[~]|€\f")


def is_gsm(text: str) -> bool:
    return all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in text)


def units(text: str) -> tuple[int, bool]:
    """(length in septets or UTF-16 code units, whether the text is GSM-7)."""
    if is_gsm(text):
        return sum(2 if ch in GSM_EXTENDED else 1 for ch in text), True
    return len(text.encode("utf-16-le")) // 2, False


def count(text: str) -> int:
    length, gsm = units(text)
    single, multi = (160, 153) if gsm else (70, 67)
    if length <= single:
        return 1
    return -(-length // multi)


def fit(head: str, text: str, tail: str, max_segments: int, ellipsis: str = "...") -> str:
    """`head + text + tail`, with `text` cut (and marked) so the whole is at most `max_segments`."""
    whole = head + text + tail
    if count(whole) <= max_segments:
        return whole
    low, high = 0, len(text)
    while low < high:  # the longest prefix of `text` that still fits
        middle = (low + high + 1) // 2
        if count(head + text[:middle].rstrip() + ellipsis + tail) <= max_segments:
            low = middle
        else:
            high = middle - 1
    return head + text[:low].rstrip() + ellipsis + tail
