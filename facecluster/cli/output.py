"""How results and messages are printed: stdout for results, stderr for the rest, every name made printable."""

from __future__ import annotations

import unicodedata

import click
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text


out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _records(columns: list[str], rows: list[list[str]], right: tuple[str, ...] = (), header: bool = True) -> None:
    """Print one record per line on stdout, the last column (a path) never cut or wrapped.

    Piped or redirected: the cells joined by tabs, after a header line, so
    `grep`, `cut -f` and `sort` work (cells hold no tab or newline: they went
    through _printable). On a terminal: aligned columns under a bold header;
    the last column runs to the end of the line, so a long path stays whole
    however narrow the terminal.
    """
    if not out.is_terminal:
        for row in [columns] * header + rows:
            click.echo("\t".join(row))  # not through rich, which would turn the tabs into spaces
        return
    widths = [max(cell_len(row[i]) for row in [columns, *rows]) for i in range(len(columns) - 1)]

    def line(row: list[str], style: str = "") -> Text:
        cells = []
        for i, cell in enumerate(row[:-1]):
            pad = " " * (widths[i] - cell_len(cell))
            cells.append(pad + cell if columns[i] in right else cell + pad)
        return Text("  ".join([*cells, row[-1]]), style=style)

    if header:
        out.print(line(columns, "bold"))
    for row in rows:
        out.print(line(row))


# Kept as they are: the joiners that emoji and Indic scripts need.
_SHOWN_AS_IS = frozenset("\u200c\u200d")


def _printable(text: str) -> str:
    """A name, path or message shown safely on one terminal line.

    Control characters (ESC starts escape sequences that recolour, retitle
    or rewrite a terminal; BEL, NUL, newline, tab), invisible format
    characters (bidi overrides, zero-width spaces) and bytes that are not
    UTF-8 are shown as escapes: \\x1b, \\u202e, \\xff.

    Example:
        _printable("a\\x1b[31mb.jpg") == "a\\\\x1b[31mb.jpg"
    """
    if text.isprintable():
        return text
    shown = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cs" and 0xDC80 <= ord(ch) <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            shown.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif category in ("Cc", "Cf", "Cs", "Zl", "Zp") and ch not in _SHOWN_AS_IS:
            shown.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch) or
                         (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"))
        else:
            shown.append(ch)
    return "".join(shown)
