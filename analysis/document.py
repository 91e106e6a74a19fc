"""The report as a document: sections of text, tables and figures, rendered as Markdown (for
GitHub, figures linked) and as one self-contained HTML page (figures embedded as data URIs).

One content, two renderings, so ``index.md`` and ``index.html`` cannot disagree. Text blocks use
two inline marks only, ``**bold**`` and ```code```, which both renderers understand.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from analysis.tables import Table


@dataclass(frozen=True)
class Text:
    """A paragraph."""

    text: str


@dataclass(frozen=True)
class TableBlock:
    """A table, the CSV file it is also written to (relative to the report) and its HTML id."""

    table: Table
    csv: str | None = None
    table_id: str | None = None
    caption: str = ""


@dataclass(frozen=True)
class FigureBlock:
    """A figure written as ``stem.png`` and ``stem.svg`` in the report directory."""

    stem: str
    alt: str
    caption: str = ""


Block = Text | TableBlock | FigureBlock


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]
    anchor: str = ""


@dataclass(frozen=True)
class Document:
    title: str
    lead: tuple[Block, ...]
    sections: tuple[Section, ...]


def to_markdown(doc: Document) -> str:
    """GitHub-flavoured Markdown; figures as links to their PNG (the SVG beside it)."""
    lines = [f"# {doc.title}", ""]
    for section in (Section("", doc.lead), *doc.sections):
        if section.title:
            lines += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Text):
                lines += [block.text, ""]
            elif isinstance(block, TableBlock):
                lines += [block.table.to_markdown()]
                notes = [block.caption] if block.caption else []
                if block.csv:
                    notes.append(f"CSV: [{block.csv}]({block.csv}).")
                lines += [" ".join(notes), ""] if notes else []
            else:
                lines += [f"![{block.alt}]({block.stem}.png)", ""]
                caption = f"{block.caption} " if block.caption else ""
                lines += [f"*{caption}*[SVG]({block.stem}.svg)" if caption else
                          f"[SVG]({block.stem}.svg)", ""]
    return "\n".join(lines)


def _inline(text: str) -> str:
    """Escape, then turn ``**bold**``, ```code``` and ``[text](link)`` into HTML."""
    out = html.escape(text, quote=False)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', out)


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 1500px; padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { font-size: 1.7em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.55em; }
td { white-space: nowrap; } td:last-child { white-space: normal; }
th { background: #f0f3f6; vertical-align: bottom; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafafa; }
tr.top { background: #fff7d6 !important; font-weight: 600; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .note { color: #555; font-size: 0.9em; }
nav a { margin-right: 1em; }
"""


def to_html(doc: Document, figure_dir: Path) -> str:
    """One self-contained page: the figures' PNGs embedded as base64 data URIs."""
    body = [f"<h1>{html.escape(doc.title)}</h1>"]
    nav = [f'<a href="#{html.escape(s.anchor)}">{html.escape(s.title)}</a>'
           for s in doc.sections if s.anchor]
    for section in (Section("", doc.lead), *doc.sections):
        if section.title:
            anchor = f' id="{html.escape(section.anchor)}"' if section.anchor else ""
            body.append(f"<h2{anchor}>{html.escape(section.title)}</h2>")
        elif nav:
            body.append(f"<nav>{''.join(nav)}</nav>")
        for block in section.blocks:
            body.append(_html_block(block, figure_dir))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(doc.title)}</title>\n<style>{STYLE}</style>\n</head>\n"
            "<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")


def _html_block(block: Block, figure_dir: Path) -> str:
    if isinstance(block, Text):
        return f"<p>{_inline(block.text)}</p>"
    if isinstance(block, TableBlock):
        notes = [_inline(block.caption)] if block.caption else []
        if block.csv:
            notes.append(f'CSV: <a href="{html.escape(block.csv)}">{html.escape(block.csv)}</a>')
        note = f"<p class=\"note\">{' '.join(notes)}</p>" if notes else ""
        return block.table.to_html(block.table_id) + note
    data = base64.b64encode((figure_dir / f"{block.stem}.png").read_bytes()).decode("ascii")
    caption = _inline(block.caption) + " " if block.caption else ""
    return (f'<figure><img alt="{html.escape(block.alt)}" src="data:image/png;base64,{data}">'
            f'<figcaption>{caption}<a href="{html.escape(block.stem)}.svg">SVG</a>'
            "</figcaption></figure>")


def figure_stems(doc: Document) -> Sequence[str]:
    """Every figure the document shows, in order."""
    return [b.stem for s in (Section("", doc.lead), *doc.sections) for b in s.blocks
            if isinstance(b, FigureBlock)]
