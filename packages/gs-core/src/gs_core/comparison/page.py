"""``index.html`` of a comparison: one static, self-contained page.

No script, font, stylesheet or image comes from elsewhere: the style is inline and the pictures
are PNGs referenced relative to the page (:mod:`gs_core.comparison.layout`), so the folder
opens from disk, from a web server or from an archive alike. Every text from the data (object
ids, method names, failure reasons) is escaped.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from gs_core.comparison import layout
from gs_core.comparison.running import ComparisonSetup, MethodResult
from gs_core.comparison.table import (
    Column,
    clip,
    groups_of,
    notes,
    protocol_line,
    rows,
    short_source,
    status_text,
    summary_group,
)
from gs_core.comparison.thumbnails import strip_caption

# Reasons in table cells and notes are cut to these lengths (the tooltip has them whole), so
# that a long hint does not push the pictures off the first screen; the list of methods without
# scores has them whole.
REASON_CHARS = 100
NOTE_CHARS = 200

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d1d1f; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
p.meta, p.caption, footer { color: #555; margin: 4px 0 12px; }
footer { margin-top: 24px; }
table { border-collapse: collapse; }
table.scores th, table.scores td { border: 1px solid #d0d0d7; padding: 4px 8px; text-align: right; }
table.scores th { background: #eef0f6; font-size: 13px; }
table.scores td.name, table.scores td.status, table.scores th.left { text-align: left; }
td.status { min-width: 200px; max-width: 340px; font-size: 13px; }
td.best { font-weight: 700; background: #e8f6ea; }
td.na { color: #999; font-style: italic; }
.ok { color: #17692b; }
.bad { color: #b3261e; }
ul.notes { color: #444; padding-left: 20px; }
table.gallery th, table.gallery td { border-bottom: 1px solid #e3e3e8; padding: 6px 10px 6px 0;
  vertical-align: middle; text-align: left; }
table.gallery img { display: block; image-rendering: auto; }
table.gallery td.failed { color: #b3261e; max-width: 260px; font-size: 12px; }
small { color: #666; }
"""


def _src(path: str) -> str:
    return escape(quote(path), quote=True)


def _img(path: str, shape, alt: str) -> str:
    h, w = shape[:2]
    return f'<img src="{_src(path)}" width="{w}" height="{h}" alt="{escape(alt, quote=True)}">'


def _header(col: Column, group: str | None = None) -> str:
    title = f' title="{escape(col.unavailable, quote=True)}"' if col.unavailable else ""
    label = f"{col.header} {col.arrow}".strip()
    if group is not None:
        label += f"<br><small>{escape(group)}</small>"
        return f"<th{title}>{label}</th>"
    return f"<th{title}>{escape(label)}</th>"


def _score_table(
    setup: ComparisonSetup, results: list[MethodResult], groups: list[str] | None
) -> str:
    """The main table (``groups`` None: the summary group, every column) or, per group, the
    image metrics that have values."""
    if groups is None:
        cols, table = rows(setup, results)
        parts = [(None, cols, table)]
    else:
        parts = []
        for g in groups:
            cols, table = rows(setup, results, g)
            keep = [j for j, c in enumerate(cols) if _image_metric(c)]
            parts.append((g, [cols[j] for j in keep], [[r[j] for j in keep] for r in table]))
    head = ['<th class="left">method</th>']
    head += ['<th class="left">status</th>'] if groups is None else []
    for g, cols, _ in parts:
        head += [_header(c, g) for c in cols]
    body = []
    for i, r in enumerate(results):
        cells = [f'<td class="name">{escape(r.name)}</td>']
        if groups is None:
            cls = "ok" if r.ok else "bad"
            full = escape(status_text(r), quote=True)
            short = escape(status_text(r, REASON_CHARS))
            cells.append(f'<td class="status {cls}" title="{full}">{short}</td>')
        for _, cols, table in parts:
            for col, cell in zip(cols, table[i], strict=True):
                cls = "na" if col.unavailable or cell.value is None else ""
                cls = "best" if cell.best else cls
                title = f' title="{escape(col.unavailable, quote=True)}"' if col.unavailable else ""
                cells.append(f'<td class="{cls}"{title}>{escape(cell.text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<table class="scores"><thead><tr>'
        + "".join(head)
        + "</tr></thead><tbody>\n"
        + "\n".join(body)
        + "\n</tbody></table>"
    )


def _image_metric(col: Column) -> bool:
    return not col.unavailable and col.key not in ("seconds", "memory") and ":" not in col.key


def _gallery(setup: ComparisonSetup, results: list[MethodResult]) -> str:
    plan = setup.plan
    head = ["<th>object</th>", "<th>input</th>", "<th>ground truth</th>"]
    head += [f"<th>{escape(r.name)}</th>" for r in results]
    body = []
    for oid in plan.object_ids:
        category = plan.records[oid].meta.get("category", "")
        cells = [f"<th>{escape(oid)}<br><small>{escape(str(category))}</small></th>"]
        cells.append(f"<td>{_img(layout.input_image(oid), setup.inputs[oid].shape, 'input')}</td>")
        truth = setup.ground_truth[oid]
        cells.append(
            f"<td>{_img(layout.ground_truth_image(oid), truth.shape, 'ground truth')}</td>"
        )
        for k, r in enumerate(results):
            strip = r.strips.get(oid)
            if strip is None:
                # the reason is in the table and the list above; the title has it on hover
                why = escape(status_text(r), quote=True)
                cells.append(f'<td class="failed" title="{why}">{escape(r.status)}</td>')
            else:
                path = layout.method_image(oid, k, r.name)
                cells.append(f"<td>{_img(path, strip.shape, r.name)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<table class="gallery"><thead><tr>'
        + "".join(head)
        + "</tr></thead><tbody>\n"
        + "\n".join(body)
        + "\n</tbody></table>"
    )


def render_page(setup: ComparisonSetup, results: list[MethodResult], footer: str = "") -> str:
    """The page's HTML: the score table and its notes, the full reasons of methods without
    scores, per object the input, ground truth and each method's strip, and the image metrics
    per view group when the protocol has several."""
    groups = groups_of(setup)
    sources = ", ".join(f"{r.name}: {short_source(r.source)}" for r in results if r.ok)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>gs3d compare</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>gs3d compare</h1>",
        f'<p class="meta">{escape(protocol_line(setup))}</p>',
        _score_table(setup, results, None),
        _list(notes(setup, results) + ([f"built from: {sources}"] if sources else []), NOTE_CHARS),
    ]
    failed = [r for r in results if not r.ok]
    if failed:
        parts += [
            "<h2>Methods without scores</h2>",
            _list([(r.name, status_text(r)) for r in failed]),
        ]
    caption = strip_caption(setup.plan.selections[setup.plan.object_ids[0]].groups)
    parts += [
        "<h2>Objects</h2>",
        f'<p class="caption">Input view, then the ground truth and each method\'s renders at '
        f"the protocol's {escape(caption)} (frames of the evaluation, scaled down).</p>",
        _gallery(setup, results),
    ]
    if len(groups) > 1:
        parts += [
            f"<h2>Image metrics per view group (the table at the top: "
            f"{escape(summary_group(setup))})</h2>",
            _score_table(setup, results, groups),
        ]
    parts += [f"<footer>{escape(footer)}</footer>" if footer else "", "</body></html>"]
    return "\n".join(p for p in parts if p) + "\n"


def _list(items: list, limit: int | None = None) -> str:
    """A bullet list of lines cut to ``limit`` characters (whole in the tooltip), or of
    ``(name, failure)`` pairs shown as the name and red text."""
    lis = []
    for item in items:
        if isinstance(item, tuple):
            name, why = item
            lis.append(f'<li><b>{escape(name)}</b> <span class="bad">{escape(why)}</span></li>')
        else:
            title = escape(item, quote=True)
            lis.append(f'<li title="{title}">{escape(clip(item, limit))}</li>')
    return '<ul class="notes">' + "".join(lis) + "</ul>"


__all__ = ["render_page"]
