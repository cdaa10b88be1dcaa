"""HTML tables and heatmaps for the demo's results: both models side by side, the difference highlighted.

Cells carry ``data-model`` / ``data-rank`` attributes so the browser test (and any scraper) can read
the numbers without parsing the layout.
"""

from __future__ import annotations

from html import escape
from pathlib import PurePath
from typing import Any

from .core import DemoInputError, Hits, Scores, Slot, same_scale

MIN_THUMB = 48  # pixels: smaller uploads are shown enlarged, in whole pixels
NOTICEABLE = 0.05  # a change of the cosine below this is shown, but not coloured
UP, DOWN = "#1a7f37", "#cf222e"  # one meaning everywhere: green = the fine-tuned model scores higher / ranks better
DIFF_SCALE = 0.5  # the difference heatmap always spans -0.5..+0.5 (larger changes saturate), so runs compare
# Gradio clips what is wider than the page: on a phone a table's last columns (the difference) would be cut off
# out of reach. In this box they scroll sideways instead.
SCROLL = '<div class="ck-scroll" style="overflow-x:auto;max-width:100%;margin-bottom:0.5em">'
HEADLINE = ("mrr@10", "ndcg@10", "accuracy@1", "cosine_accuracy", "spearman_cosine", "cosine_ap", "knn_top1",
            "spearman_dot", "dot_ap", "spearman", "average_precision")


def training_summary(metrics: dict[str, Any] | None) -> str:
    """One Markdown line with the run's before/after evaluation from its metrics.json ('' when there is none).

    A rerank run's ``*_base_*`` rows are its retriever's own order (the same before and after), shown once as what
    reranking is measured against; a sparse run's ``*_active_dims`` rows are sizes, shown without colour."""
    rows = (metrics or {}).get("before_after") or {}
    retriever = {k: r for k, r in rows.items() if "_base_" in k}
    sizes = {k: r for k, r in rows.items() if k.endswith("active_dims") and k not in retriever}
    quality = {k: r for k, r in rows.items() if k not in retriever and k not in sizes}
    picked = [k for h in HEADLINE for k in quality if k.endswith(h)] or list(quality)
    parts = []
    for key in list(dict.fromkeys(picked))[:3]:
        r = quality[key]
        colour = UP if r["delta"] > 0 else DOWN if r["delta"] < 0 else "inherit"
        parts.append(f"{key.removeprefix('heldout_')} {r['before']:.3f} → {r['after']:.3f} "
                     f"(<span style='color:{colour}'>{r['delta']:+.3f}</span>)")
    own = next((k for h in HEADLINE for k in retriever if k.endswith("_base_" + h)), None)
    if parts and own:
        parts.append(f"the retriever's own order: {own.split('_base_', 1)[1]} {retriever[own]['after']:.3f}")
    for key in [k for k in sizes if "query" in k][:1] or list(sizes)[:1]:
        r = sizes[key]
        parts.append(f"{key.removeprefix('heldout_').replace('_', ' ')} {r['before']:.1f} → {r['after']:.1f}")
    if not parts:
        return ""
    return "Training changed, on the run's held-out split (metrics.json): " + "; ".join(parts)


def scale(slot: Slot) -> str:
    """What a model's numbers are and their range, e.g. 'relevance score (reranker), from 0 to 1'."""
    if slot.kind == "cross":
        return "relevance score (reranker), " + ("from 0 to 1" if _sigmoid(slot) else "a raw logit")
    if slot.score_name == "dot product":
        return "dot product of sparse vectors, higher = closer (no fixed maximum)"
    return f"{slot.score_name}, from −1 to 1"


def _sigmoid(slot: Slot) -> bool:
    """True for a reranker whose scores go through a sigmoid (one label, sentence-transformers' default)."""
    return type(getattr(slot.model, "activation_fn", None)).__name__ == "Sigmoid"


def scales_line(slots: list[Slot]) -> str:
    """The footer under a table: the one scale of all models, or each model's."""
    loaded = [s for s in slots if s.model is not None]
    found = list(dict.fromkeys(scale(s) for s in loaded))
    if len(found) <= 1:
        return escape(found[0] if found else "")
    return escape("; ".join(f"{s.role}: {scale(s)}" for s in loaded))


def message(text: str, warn: bool = False) -> str:
    """A friendly note in the page (used instead of error popups)."""
    icon = "⚠️" if warn else "ℹ️"
    return f'<div class="ck-message" role="status">{icon} {escape(text)}</div>'


def problem(exc: BaseException) -> str:
    """A failed handler's message for the page: bad input in its own words, anything else named as a failure."""
    if isinstance(exc, DemoInputError):
        return message(str(exc))
    return message(f"Something went wrong: {type(exc).__name__}: {exc}"[:400], warn=True)


def _notes(notes: list[str]) -> str:
    return "".join(f'<p class="ck-note">ℹ️ {escape(n)}</p>' for n in notes)


def _header(slot: Slot) -> str:
    kind = f'<br><small class="ck-kind">{escape(slot.score_name)}</small>' if slot.model is not None else ""
    return f'{escape(slot.role)}<br><small>{escape(_short(slot.name, 40))}</small>{kind}'


def page_title(slots: list[Slot]) -> str:
    """The browser tab's title: the two models by the last part of their names, so several demos open side by side
    are told apart (an image run's base by its backbone)."""
    names = [PurePath(s.name.split(" (")[0].rstrip("/")).name or s.name for s in reversed(slots)]
    return " vs ".join(dict.fromkeys(_short(n, 40) for n in names)) + " · contrastkit demo"


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def delta_cell(delta: float, noticeable: float = NOTICEABLE) -> str:
    """The change from base to fine-tuned, coloured when it is ``noticeable`` or more."""
    style = ""
    if abs(delta) >= noticeable:
        style = f' style="color:{UP if delta > 0 else DOWN};font-weight:bold"'
    return f'<td class="ck-delta" data-model="delta"{style}>{delta:+.4f}</td>'


def scores_table(result: Scores, slots: list[Slot], item_header: str = "compared with text A",
                 ranks: bool = False) -> str:
    """One row per compared item: each model's score, then the difference when the two scores are the same kind
    of number; otherwise (or with ``ranks``) each score shows its place in that model's order (#1: its best
    match)."""
    roles = [s.role for s in slots]
    present = len(slots) == 2 and all(result.by_model.get(r) is not None for r in roles)
    both = present and same_scale(slots)
    order = present and (ranks or not both) and len(result.rows) > 1
    head = "".join(f"<th>{_header(s)}</th>" for s in slots) + ("<th>difference<br><small>fine-tuned − base"
                                                             "</small></th>" if both else "")
    places = {r: _places(result.by_model[r]) for r in roles} if order else {}
    body = []
    for i, item in enumerate(result.rows):
        cells = []
        for role in roles:
            values = result.by_model.get(role)
            place = f' <small class="ck-order" data-order="{places[role][i]}">#{places[role][i]}</small>' \
                if role in places else ""
            cells.append(f'<td class="ck-score" data-model="{role}">{values[i]:.4f}{place}</td>' if values is not None
                         else f'<td class="ck-score" data-model="{role}"><small>does not embed this</small></td>')
        if both:
            base, tuned = result.by_model[roles[0]][i], result.by_model[roles[1]][i]
            cells.append(delta_cell(tuned - base, _noticeable(slots[1], base, tuned)))
        body.append(f"<tr><td>{escape(_short(item, 200))}</td>{''.join(cells)}</tr>")
    notes = list(result.notes)
    if present and not both:
        notes.append(f"The two models' scores are different kinds of number ({slots[0].role}: "
                     f"{slots[0].score_name}, {slots[1].role}: {slots[1].score_name}), so no difference is shown; "
                     f"compare their order instead (#1: the model's best match).")
    return (f'{_notes(notes)}{thumbnails(result.images)}{SCROLL}<table class="ck-table"><thead><tr>'
            f'<th>{escape(item_header)}</th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
            f"<p><small>{scales_line([s for s in slots if result.by_model.get(s.role) is not None])}</small></p>")


def _places(values: list[float]) -> list[int]:
    """1 for the highest value, 2 for the next, ..."""
    order = sorted(range(len(values)), key=lambda i: -values[i])
    places = [0] * len(values)
    for place, i in enumerate(order, 1):
        places[i] = place
    return places


def _noticeable(slot: Slot, base: float, tuned: float) -> float:
    """NOTICEABLE on the bounded scales; 5% of the larger score for dot products, which have no fixed range."""
    if slot.score_name == "dot product":
        return max(NOTICEABLE * max(abs(base), abs(tuned)), 1e-9)
    return NOTICEABLE


def thumbnails(images: list[Any], size: int = 96) -> str:
    """Small inline previews of the uploaded images, so the result shows what was compared."""
    import base64
    import io

    tags = []
    for img in images:
        thumb = img.copy()
        thumb.thumbnail((size, size))
        if max(thumb.size) < MIN_THUMB:  # an 8x8 digit: whole pixels, large enough to see
            factor = -(-MIN_THUMB // max(thumb.size))
            thumb = thumb.resize((thumb.width * factor, thumb.height * factor), resample=0)  # nearest
        buf = io.BytesIO()
        thumb.save(buf, format="PNG")
        tags.append(f'<img class="ck-thumb" alt="uploaded image" style="display:inline-block;margin:4px;'
                    f'border:1px solid #ccc;image-rendering:pixelated" '
                    f'src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">')
    return f"<div>{''.join(tags)}</div>" if tags else ""


def move_badge(rank: int, base_rank: int | None, than: str = "base") -> str:
    """'▲4 (base #5)' in green when a document ranks higher than it did in ``than``'s order (the base model's, or
    a reranker's retriever's)."""
    if base_rank is None:
        return ""
    moved = base_rank - rank
    arrow, colour = ("▲", UP) if moved > 0 else ("▼", DOWN) if moved < 0 else ("=", "inherit")
    text = f"{arrow}{abs(moved)}" if moved else arrow
    css = "ck-move" if than == "base" else "ck-rerank-move"
    title = "base model rank" if than == "base" else "rank in the reranker's retriever's order"
    return (f'<span class="{css}" data-moved="{moved}" style="color:{colour};font-weight:bold" '
            f'title="{title} #{base_rank}">{text} <small>({than} #{base_rank})</small></span> ')


def hits_table(hits: Hits, slots: list[Slot]) -> str:
    """Top-k hits per model side by side; rows where the models disagree are highlighted. A reranker's hits show
    how far it moved each from its retriever's rank; the fine-tuned hits, from the base model's rank."""
    roles = [s.role for s in slots]
    k = max((len(v) for v in hits.by_model.values() if v), default=0)
    head = "".join(f"<th>{_header(s)}</th>" for s in slots)
    base_ranks = hits.ranks.get(roles[0], {})
    base_candidates = len(hits.retrieved.get(roles[0], {}))
    body = []
    for rank in range(k):
        docs, cells = set(), []
        for role in roles:
            found = hits.by_model.get(role)
            if found is None or rank >= len(found):
                cells.append(f'<td data-model="{role}" data-rank="{rank + 1}"><small>—</small></td>')
                continue
            doc, score = found[rank]
            docs.add(doc)
            moved = move_badge(rank + 1, hits.retrieved[role].get(doc), "retriever") if role in hits.retrieved else ""
            if role != roles[0]:
                moved += move_badge(rank + 1, base_ranks.get(doc)) or (
                    f'<span class="ck-move" data-moved="new"><small>(not in the base reranker\'s top '
                    f"{base_candidates})</small></span> " if base_candidates and roles[0] in hits.ranks else "")
            cells.append(f'<td class="ck-hit" data-model="{role}" data-rank="{rank + 1}">'
                         f'<b class="ck-score">{score:.4f}</b> {moved}<span class="ck-doc">{escape(_short(doc, 300))}'
                         f"</span></td>")
        differ = len(docs) > 1
        style = ' style="background:rgba(255,196,0,0.18)" title="the models disagree here"' if differ else ""
        body.append(f"<tr{style}><td>{rank + 1}</td>{''.join(cells)}</tr>")
    legend = ("Highlighted rows: the two models rank a different document here. Beside each fine-tuned "
              f"hit: how far it moved from the base model's rank (<span style='color:{UP}'>▲ up</span>, "
              f"<span style='color:{DOWN}'>▼ down</span>, = same)." if len(slots) == 2 else "")
    if hits.retrieved:
        legend += (" Beside each reranked hit: how far the reranker moved it from its retriever's rank "
                   "(retriever #n).")
    legend = f"<p><small>{legend.strip()}</small></p>" if legend else ""
    return (f'{_notes(hits.notes)}{SCROLL}<table class="ck-table"><thead><tr><th>rank</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>{legend}<p><small>Scores: "
            f"{scales_line([s for s in slots if hits.by_model.get(s.role) is not None])}</small></p>")


def heatmaps(labels: list[str], matrices: dict[str, Any], slots: list[Slot]) -> Any:
    """One heatmap per model (plus their difference when there are two of the same kind of score), as a matplotlib
    figure.

    The difference uses the tables' colours (green: fine-tuned higher, red: lower) on a fixed -0.5..+0.5 scale
    (dot products, which have no fixed range: their largest change); every number is written in black or white,
    whichever reads better on its cell. Items no installed font can draw are labelled by number (#1: the first)."""
    import matplotlib
    from contrastkit.plugins.report import label_font
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

    diverging = LinearSegmentedColormap.from_list("ck_diff", [DOWN, "#ffffff", UP])
    kinds = len({s.score_name for s in slots if s.role in matrices}) > 1  # name each panel's kind of number
    panels = [(_panel_title(s, kinds), matrices[s.role], matplotlib.colormaps["viridis"], _limits(s, matrices[s.role]),
               False) for s in slots if s.role in matrices]
    if len(panels) == 2 and same_scale(slots):
        diff = panels[1][1] - panels[0][1]
        bound = DIFF_SCALE if slots[1].score_name != "dot product" else max(float(abs(diff).max()), 1e-6)
        panels.append(("difference (fine-tuned − base)", diff, diverging, (-bound, bound), True))
    n = len(labels)
    size = min(2.2 + 0.35 * n, 6.5)
    fig = Figure(figsize=(size * len(panels), size), dpi=90)  # not pyplot: a notebook's backend stays its own
    axes = fig.subplots(1, len(panels), squeeze=False)
    ticks = [_short(label, 18) for label in labels]
    font = label_font(ticks)
    if font is None:  # no installed font draws these texts (CJK on a stock Debian): their numbers, not boxes
        ticks, font = [f"#{i + 1}" for i in range(n)], FontProperties()
    font.set_size(7)
    for ax, (title, mat, cmap, (lo, hi), signed) in zip(axes[0], panels):
        im = ax.imshow(mat, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(n), ticks, rotation=60, ha="right", fontproperties=font)
        ax.set_yticks(range(n), ticks, fontproperties=font)
        if n <= 10:
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, f"{mat[i, j]:+.2f}" if signed else f"{mat[i, j]:.2f}",
                            ha="center", va="center", fontsize=7, fontweight="bold",
                            color=text_colour(cmap(im.norm(mat[i, j]))))
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, extend="both" if signed else "neither")
    fig.tight_layout()
    return fig  # gr.Plot renders the figure object; pyplot never holds it


def _panel_title(slot: Slot, kinds: bool = False) -> str:
    """'role: name', plus the kind of number unless it is the cosine every panel shows (``kinds``: they differ)."""
    title = f"{slot.role}: {_short(slot.name, 30)}"
    return title if slot.score_name == "cosine similarity" and not kinds else f"{title}\n{slot.score_name}" + (
        " (row: query, column: document)" if slot.kind == "cross" else "")


def _limits(slot: Slot, matrix: Any) -> tuple[float, float]:
    """Colour limits: −1..1 for cosines, 0..1 for a sigmoid relevance score, the data's range otherwise."""
    if slot.score_name == "cosine similarity":
        return -1.0, 1.0
    if slot.kind == "cross" and _sigmoid(slot):
        return 0.0, 1.0
    lo, hi = float(matrix.min()), float(matrix.max())
    return (min(lo, 0.0), hi if hi > min(lo, 0.0) else min(lo, 0.0) + 1.0)


def text_colour(rgba: tuple[float, ...]) -> str:
    """Black on light cells, white on dark ones (relative luminance, WCAG)."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgba[:3])
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.179 else "white"
