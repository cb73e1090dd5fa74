"""The text rules of names and of the numbers a user types: pure functions, importing nothing of ours but errors.

One check and tidy-up of a person's name (clean_name) wherever a name comes
from (command line, name file, XMP, Picasa, the review page), one sort order
(name_order), what counts as a group or face id, and how a count, a path
(portable_path) and a time in a video (clock) are written. Low in the import graph so
that file formats (xmp.py), the store and the exports can use them without
importing the people actions (people.py).
"""

from __future__ import annotations

import os
import unicodedata

from facecluster.errors import PeopleError

MAX_ID = 2**63 - 1  # SQLite's largest integer: a bigger number is no group, not an OverflowError


def parse_id(text: str) -> int | None:
    """A group or face id typed by the user: ASCII digits naming a number SQLite can hold, else None.

    Example:
        parse_id("12") == 12; parse_id("²") is None; parse_id(str(2**63)) is None
    """
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) <= MAX_ID else None


# Control characters (C0, DEL, C1: ESC starts terminal escape sequences, and they make XML invalid)
# and invisible format characters (bidi overrides reorder what a terminal shows; zero-width spaces
# make two names look alike) are refused in names, except the joiners that emoji and Indic scripts need.
_ALLOWED_FORMAT = frozenset("\u200c\u200d")  # zero-width non-joiner, zero-width joiner


def group_number(text: str) -> int | None:
    """The group number `text` stands for ("12", "#12", "-1"), or None when it is a name.

    Example:
        group_number("#12") == 12
    """
    digits = text[1:] if text.startswith("#") else text
    body = digits[1:] if digits[:1] in ("+", "-") else digits
    return int(digits) if body.isdecimal() else None


def is_text(text: str) -> bool:
    """False for command-line bytes that were not UTF-8 (Python keeps them as lone surrogates)."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def clean_name(name: str) -> str:
    """The one check and tidy-up of a person's name, wherever it comes from (command line, name file, XMP).

    White space runs become one space and the ends are trimmed; the text is put in NFC form so that
    an accented letter typed two ways is one name. Refused with a PeopleError: an empty name, one
    that looks like a group number, one over 200 characters, bytes that are not UTF-8, control
    characters (ESC, BEL, NUL, ...) and invisible format characters (bidi overrides, zero-width spaces).

    Example:
        clean_name("  Alice   Smith ") == "Alice Smith"
    """
    if not is_text(name):
        raise PeopleError("a name must be text: this one holds bytes that are not UTF-8")
    cleaned = unicodedata.normalize("NFC", " ".join(name.split()))
    if not cleaned:
        raise PeopleError("a name cannot be empty")
    if len(cleaned) > 200:
        raise PeopleError("a name can be at most 200 characters")
    for ch in cleaned:
        category = unicodedata.category(ch)
        if category == "Cc" or (category == "Cf" and ch not in _ALLOWED_FORMAT):
            raise PeopleError(f"a name cannot hold control or invisible characters (this one holds U+{ord(ch):04X})")
    if cleaned.lstrip("#+-").isdigit():
        raise PeopleError(f"{cleaned!r} looks like a group number; a name needs a letter")
    return cleaned


def name_order(name: str) -> tuple[str, str, str]:
    """Sort key for names, the same whatever the locale: accents and case ignored first ("Élton"
    between "Eli" and "Emma", not after "Sheldon"), then the exact spelling breaks ties.

    Example:
        sorted(["Sheldon", "Élton", "eli"], key=name_order) == ["eli", "Élton", "Sheldon"]
    """
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold().translate(_BASE_LETTERS)
    return bare, name.casefold(), name


# Letters Unicode does not decompose into a base letter and a mark, sorted as that base letter.
_BASE_LETTERS = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ħ": "h", "ı": "i", "æ": "ae", "œ": "oe", "þ": "th"})


def plural(count: int, word: str, words: str | None = None) -> str:
    """ "1 face", "2 faces"; `words` for plurals that are not word + s.

    Example:
        plural(1, "photo") == "1 photo"
    """
    return f"{count} {word if count == 1 else words or word + 's'}"


def portable_path(path: str) -> str:
    """A path as text that is always valid UTF-8: bytes that are not UTF-8 become `\\xNN`.

    Example:
        portable_path(os.fsdecode(b"caf\\xe9.jpg")) == "caf\\\\xe9.jpg"
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace") if not is_text(path) else path


def clock(seconds: float) -> str:
    """A time in a video as a person reads it.

    Example:
        clock(75.4)  # "1:15"
    """
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"
