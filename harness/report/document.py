"""A small structured document, written once and rendered to Markdown, HTML and JSON.

The model card is built as a :class:`Document` of sections holding paragraphs, lists,
tables and figures. Text is a sequence of inline pieces: a plain ``str`` is *always*
escaped by the renderer (it may hold user-supplied class, group or dataset names), and
:class:`Strong` / :class:`Code` mark emphasis and literals. No renderer trusts any string:
there is no raw-HTML or raw-Markdown piece, so a hostile name cannot inject markup.

Every function here is pure: figures are embedded from bytes handed in by the caller.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Strong:
    text: str


@dataclass(frozen=True)
class Code:
    text: str


Inline = str | Strong | Code
Text = Inline | Sequence[Inline]


@dataclass(frozen=True)
class Paragraph:
    text: Text


@dataclass(frozen=True)
class BulletList:
    items: Sequence[Text]


@dataclass(frozen=True)
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[Text]]
    caption: str | None = None


@dataclass(frozen=True)
class Figure:
    """An image beside the card: ``files`` are names relative to the card (SVG and/or PNG).

    ``missing`` says why there is no image; the renderers print it instead.
    """

    key: str
    alt: str
    caption: Text
    files: Sequence[str] = ()
    missing: str | None = None


Block = Paragraph | BulletList | Table | Figure


@dataclass(frozen=True)
class Section:
    title: str
    blocks: Sequence[Block]
    anchor: str = ""


@dataclass(frozen=True)
class Document:
    title: str
    sections: Sequence[Section]
    metadata: Mapping = field(default_factory=dict)  # the YAML front matter (Hugging Face model card metadata)


def pieces(text: Text) -> list[Inline]:
    return [text] if isinstance(text, str | Strong | Code) else list(text)


def plain(text: Text) -> str:
    """The text without any markup (for JSON consumers and alt text)."""
    return "".join(p if isinstance(p, str) else p.text for p in pieces(text))


# --------------------------------------------------------------------------- Markdown

# "_" inside a word never starts emphasis in CommonMark, so snake_case names stay readable
_MD_SPECIAL = re.compile(r"([\\`*\[\]<|~]|&(?=#?\w+;)|(?<![^\W_])_|_(?![^\W_]))")
_MD_LINE_START = re.compile(r"^(\d*)([#>+=.)-])")


def md_escape(text: str) -> str:
    """Plain text made inert in CommonMark / GFM, on one line (newlines would end a row or item).

    Backslash-escapes what could start markup (emphasis, code, links, raw HTML, entities,
    table cells, strikethrough); ``>`` alone is harmless. What matters only at the start of a
    line (a heading, quote or list marker) is escaped by :func:`_md_line`.
    """
    return _MD_SPECIAL.sub(r"\\\1", re.sub(r"\s+", " ", text))


def _md_line(text: str) -> str:
    return _MD_LINE_START.sub(r"\1\\\2", text)


def _md_code(text: str) -> str:
    text = re.sub(r"\s+", " ", text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_inline(text: Text) -> str:
    out = []
    for p in pieces(text):
        if isinstance(p, Strong):
            out.append(f"**{md_escape(p.text)}**")
        elif isinstance(p, Code):
            out.append(_md_code(p.text).replace("|", r"\|"))
        else:
            out.append(md_escape(p))
    return "".join(out)


def _md_block(block: Block) -> list[str]:
    if isinstance(block, Paragraph):
        return [_md_line(md_inline(block.text))]
    if isinstance(block, BulletList):
        return [f"- {md_inline(item)}" for item in block.items] or ["- none"]
    if isinstance(block, Table):
        lines = [md_inline(block.caption), ""] if block.caption else []
        lines += ["| " + " | ".join(md_escape(h) for h in block.header) + " |",
                  "|" + "|".join("---" for _ in block.header) + "|"]
        lines += ["| " + " | ".join(md_inline(c) for c in row) + " |" for row in block.rows]
        return lines
    png = next((f for f in block.files if f.endswith(".png")), block.files[0] if block.files else None)
    if png is None:
        return [md_inline([Strong(block.alt + ":"), " not plotted: " + (block.missing or "no reason recorded")])]
    target = png if re.fullmatch(r"[\w./-]+", png) else "<" + png.replace("<", "%3C").replace(">", "%3E") + ">"
    return [f"![{md_escape(block.alt)}]({target})", "", md_inline(block.caption)]


def render_markdown(doc: Document, *, front_matter: str = "") -> str:
    """The document as Markdown, after an optional YAML front matter block (already emitted)."""
    parts = [front_matter.rstrip("\n")] if front_matter else []
    parts.append(f"# {md_escape(doc.title)}")
    for section in doc.sections:
        lines = [f"## {md_escape(section.title)}"]
        for block in section.blocks:
            lines += ["", *_md_block(block)]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


# --------------------------------------------------------------------------- HTML

_MIME = {".svg": "image/svg+xml", ".png": "image/png"}

#: the header band is this exact colour; the Chromium test looks for it in the screenshot
HEADER_RGB = (31, 58, 95)

_CSS = """
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1b1f24;
background:#f4f5f7}
header.band{background:#1f3a5f;color:#fff;padding:22px 32px}
header.band h1{margin:0;font-size:26px}
header.band p{margin:6px 0 0;opacity:.9}
nav.toc{background:#fff;border-bottom:1px solid #d8dde3;padding:8px 32px;font-size:13px}
nav.toc a{color:#1f3a5f;margin-right:14px;text-decoration:none}
main{max-width:1100px;margin:0 auto;padding:8px 32px 40px}
section{background:#fff;border:1px solid #d8dde3;border-radius:6px;margin:18px 0;padding:6px 22px 16px}
h2{color:#1f3a5f;border-bottom:2px solid #e3e8ee;padding-bottom:4px;font-size:20px}
table{border-collapse:collapse;margin:10px 0;font-size:13px;display:block;overflow-x:auto}
th,td{border:1px solid #d8dde3;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef2f7}
tr:nth-child(even) td{background:#fafbfc}
caption{caption-side:top;text-align:left;font-weight:600;padding:4px 0}
code{background:#eef2f7;padding:1px 4px;border-radius:3px;font-size:90%;word-break:break-all}
figure{margin:12px 0}
figure img{max-width:100%;height:auto;border:1px solid #e3e8ee}
figcaption{font-size:13px;color:#4a5563}
p.missing{color:#8a4b00;background:#fff6e5;border-left:4px solid #e0a100;padding:6px 10px}
"""


def html_inline(text: Text) -> str:
    out = []
    for p in pieces(text):
        if isinstance(p, Strong):
            out.append(f"<strong>{html.escape(p.text)}</strong>")
        elif isinstance(p, Code):
            out.append(f"<code>{html.escape(p.text)}</code>")
        else:
            out.append(html.escape(p))
    return "".join(out)


def _data_uri(name: str, data: bytes) -> str:
    mime = _MIME[name[name.rfind("."):].lower()]
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _html_figure(block: Figure, images: Mapping[str, bytes]) -> list[str]:
    embedded = sorted((f for f in block.files if f in images and f[f.rfind("."):].lower() in _MIME),
                      key=lambda f: not f.endswith(".svg"))  # SVG first: sharp at any zoom
    if not embedded:
        why = block.missing or ("the image file was not available when this card was rendered" if block.files
                                else "no reason recorded")
        return [f'<p class="missing"><strong>{html.escape(block.alt)}:</strong> not plotted: {html.escape(why)}</p>']
    src = _data_uri(embedded[0], images[embedded[0]])
    return [f'<figure id="fig-{html.escape(block.key)}"><img alt="{html.escape(block.alt)}" src="{src}">',
            f"<figcaption>{html_inline(block.caption)}</figcaption></figure>"]


def _html_block(block: Block, images: Mapping[str, bytes]) -> list[str]:
    if isinstance(block, Paragraph):
        return [f"<p>{html_inline(block.text)}</p>"]
    if isinstance(block, BulletList):
        return ["<ul>", *(f"<li>{html_inline(item)}</li>" for item in block.items), "</ul>"]
    if isinstance(block, Table):
        lines = ["<table>"]
        if block.caption:
            lines.append(f"<caption>{html.escape(block.caption)}</caption>")
        lines.append("<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in block.header) + "</tr></thead>")
        lines.append("<tbody>")
        lines += ["<tr>" + "".join(f"<td>{html_inline(c)}</td>" for c in row) + "</tr>" for row in block.rows]
        return [*lines, "</tbody></table>"]
    return _html_figure(block, images)


def render_html(doc: Document, *, subtitle: str = "", images: Mapping[str, bytes] | None = None) -> str:
    """A self-contained HTML page: inline CSS, figures as data URIs, no script, no network resource."""
    images = images or {}
    toc = "".join(f'<a href="#{html.escape(s.anchor)}">{html.escape(s.title)}</a>' for s in doc.sections if s.anchor)
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'\">",
        f"<title>{html.escape(doc.title)}</title>",
        f"<style>{_CSS.strip()}</style>",
        "</head><body>",
        f'<header class="band"><h1>{html.escape(doc.title)}</h1><p>{html.escape(subtitle)}</p></header>',
        f'<nav class="toc">{toc}</nav>',
        "<main>",
    ]
    for section in doc.sections:
        anchor = f' id="{html.escape(section.anchor)}"' if section.anchor else ""
        lines.append(f"<section{anchor}><h2>{html.escape(section.title)}</h2>")
        for block in section.blocks:
            lines += _html_block(block, images)
        lines.append("</section>")
    lines += ["</main>", "</body></html>"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- JSON


def _json_block(block: Block) -> dict:
    if isinstance(block, Paragraph):
        return {"type": "paragraph", "text": plain(block.text)}
    if isinstance(block, BulletList):
        return {"type": "list", "items": [plain(i) for i in block.items]}
    if isinstance(block, Table):
        return {"type": "table", "caption": block.caption, "header": list(block.header),
                "rows": [[plain(c) for c in row] for row in block.rows]}
    return {"type": "figure", "key": block.key, "alt": block.alt, "caption": plain(block.caption),
            "files": list(block.files), "missing": block.missing}


def document_dict(doc: Document) -> dict:
    """The document as plain JSON types: sections of typed blocks, text without markup."""
    return {
        "title": doc.title,
        "sections": [{"title": s.title, "anchor": s.anchor, "blocks": [_json_block(b) for b in s.blocks]}
                     for s in doc.sections],
    }
