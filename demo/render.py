"""HTML tables and heatmaps for the demo's results: both models side by side, the difference highlighted.

Cells carry ``data-model`` / ``data-rank`` attributes so the browser test (and any scraper) can read
the numbers without parsing the layout.
"""

from __future__ import annotations

from html import escape
from typing import Any

from .core import Hits, Scores, Slot

NOTICEABLE = 0.05  # a change of the cosine below this is shown, but not coloured
UP, DOWN = "#1a7f37", "#cf222e"  # one meaning everywhere: green = the fine-tuned model scores higher / ranks better
DIFF_SCALE = 0.5  # the difference heatmap always spans -0.5..+0.5 (larger changes saturate), so runs compare
HEADLINE = ("mrr@10", "ndcg@10", "accuracy@1", "cosine_accuracy", "spearman_cosine", "cosine_ap", "knn_top1")


def training_summary(metrics: dict[str, Any] | None) -> str:
    """One Markdown line with the run's before/after evaluation from its metrics.json ('' when there is none)."""
    rows = (metrics or {}).get("before_after") or {}
    picked = [k for h in HEADLINE for k in rows if k.endswith(h)] or list(rows)
    parts = []
    for key in list(dict.fromkeys(picked))[:3]:
        r = rows[key]
        colour = UP if r["delta"] > 0 else DOWN if r["delta"] < 0 else "inherit"
        parts.append(f"{key.removeprefix('heldout_')} {r['before']:.3f} → {r['after']:.3f} "
                     f"(<span style='color:{colour}'>{r['delta']:+.3f}</span>)")
    if not parts:
        return ""
    return "Training changed, on the run's held-out split (metrics.json): " + "; ".join(parts)


def message(text: str, warn: bool = False) -> str:
    """A friendly note in the page (used instead of error popups)."""
    icon = "⚠️" if warn else "ℹ️"
    return f'<div class="ck-message" role="status">{icon} {escape(text)}</div>'


def _notes(notes: list[str]) -> str:
    return "".join(f'<p class="ck-note">ℹ️ {escape(n)}</p>' for n in notes)


def _header(slot: Slot) -> str:
    return f'{escape(slot.role)}<br><small>{escape(_short(slot.name, 40))}</small>'


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def delta_cell(delta: float) -> str:
    """The change from base to fine-tuned, coloured when it is noticeable."""
    style = ""
    if abs(delta) >= NOTICEABLE:
        style = f' style="color:{UP if delta > 0 else DOWN};font-weight:bold"'
    return f'<td class="ck-delta" data-model="delta"{style}>{delta:+.4f}</td>'


def scores_table(result: Scores, slots: list[Slot], item_header: str = "compared with text A") -> str:
    """One row per compared item: each model's cosine similarity, then the difference."""
    roles = [s.role for s in slots]
    both = len(slots) == 2 and all(result.by_model.get(r) is not None for r in roles)
    head = "".join(f"<th>{_header(s)}</th>" for s in slots) + ("<th>difference<br><small>fine-tuned − base"
                                                             "</small></th>" if both else "")
    body = []
    for i, item in enumerate(result.rows):
        cells = []
        for role in roles:
            values = result.by_model.get(role)
            cells.append(f'<td class="ck-score" data-model="{role}">{values[i]:.4f}</td>' if values is not None
                         else f'<td class="ck-score" data-model="{role}"><small>does not embed this</small></td>')
        if both:
            cells.append(delta_cell(result.by_model[roles[1]][i] - result.by_model[roles[0]][i]))
        body.append(f"<tr><td>{escape(_short(item, 200))}</td>{''.join(cells)}</tr>")
    return (f'{_notes(result.notes)}{thumbnails(result.images)}<table class="ck-table"><thead><tr><th>{escape(item_header)}</th>{head}</tr>'
            f"</thead><tbody>{''.join(body)}</tbody></table><p><small>cosine similarity, from −1 to 1</small></p>")


def thumbnails(images: list[Any], size: int = 96) -> str:
    """Small inline previews of the uploaded images, so the result shows what was compared."""
    import base64
    import io

    tags = []
    for img in images:
        thumb = img.copy()
        thumb.thumbnail((size, size))
        buf = io.BytesIO()
        thumb.save(buf, format="PNG")
        tags.append(f'<img class="ck-thumb" alt="uploaded image" style="margin:4px;border:1px solid #ccc" '
                    f'src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">')
    return f"<div>{''.join(tags)}</div>" if tags else ""


def move_badge(rank: int, base_rank: int | None) -> str:
    """'▲4 (base #5)' in green when the fine-tuned model ranks a document higher than the base did."""
    if base_rank is None:
        return ""
    moved = base_rank - rank
    arrow, colour = ("▲", UP) if moved > 0 else ("▼", DOWN) if moved < 0 else ("=", "inherit")
    text = f"{arrow}{abs(moved)}" if moved else arrow
    return (f'<span class="ck-move" data-moved="{moved}" style="color:{colour};font-weight:bold" '
            f'title="base model rank #{base_rank}">{text} <small>(base #{base_rank})</small></span> ')


def hits_table(hits: Hits, slots: list[Slot]) -> str:
    """Top-k hits per model side by side; rows where the models disagree are highlighted."""
    roles = [s.role for s in slots]
    k = max((len(v) for v in hits.by_model.values() if v), default=0)
    head = "".join(f"<th>{_header(s)}</th>" for s in slots)
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
            moved = move_badge(rank + 1, hits.ranks.get(roles[0], {}).get(doc)) if role != roles[0] else ""
            cells.append(f'<td class="ck-hit" data-model="{role}" data-rank="{rank + 1}">'
                         f'<b class="ck-score">{score:.4f}</b> {moved}<span class="ck-doc">{escape(_short(doc, 300))}'
                         f"</span></td>")
        differ = len(docs) > 1
        style = ' style="background:rgba(255,196,0,0.18)" title="the models disagree here"' if differ else ""
        body.append(f"<tr{style}><td>{rank + 1}</td>{''.join(cells)}</tr>")
    legend = ("<p><small>Highlighted rows: the two models rank a different document here. Beside each fine-tuned "
              f"hit: how far it moved from the base model's rank (<span style='color:{UP}'>▲ up</span>, "
              f"<span style='color:{DOWN}'>▼ down</span>, = same).</small></p>" if len(slots) == 2 else "")
    return (f'{_notes(hits.notes)}<table class="ck-table"><thead><tr><th>rank</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>{legend}")


def heatmaps(labels: list[str], matrices: dict[str, Any], slots: list[Slot]) -> Any:
    """One heatmap per model (plus their difference when there are two), as a matplotlib figure.

    The difference uses the tables' colours (green: fine-tuned higher, red: lower) on a fixed -0.5..+0.5 scale;
    every number is written in black or white, whichever reads better on its cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LinearSegmentedColormap

    diverging = LinearSegmentedColormap.from_list("ck_diff", [DOWN, "#ffffff", UP])
    panels = [(f"{s.role}: {_short(s.name, 30)}", matrices[s.role], plt.get_cmap("viridis"), (-1, 1))
              for s in slots if s.role in matrices]
    if len(panels) == 2:
        panels.append(("difference (fine-tuned − base)", panels[1][1] - panels[0][1], diverging,
                       (-DIFF_SCALE, DIFF_SCALE)))
    n = len(labels)
    size = min(2.2 + 0.35 * n, 6.5)
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size), dpi=90, squeeze=False)
    ticks = [_short(label, 18) for label in labels]
    for ax, (title, mat, cmap, (lo, hi)) in zip(axes[0], panels):
        im = ax.imshow(mat, cmap=cmap, vmin=lo, vmax=hi)
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(n), ticks, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(n), ticks, fontsize=7)
        if n <= 10:
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, f"{mat[i, j]:+.2f}" if hi < 1 else f"{mat[i, j]:.2f}",
                            ha="center", va="center", fontsize=7, fontweight="bold",
                            color=text_colour(cmap(im.norm(mat[i, j]))))
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, extend="both" if hi < 1 else "neither")
    fig.tight_layout()
    plt.close(fig)  # gr.Plot renders the figure object; keep pyplot's registry from growing
    return fig


def text_colour(rgba: tuple[float, ...]) -> str:
    """Black on light cells, white on dark ones (relative luminance, WCAG)."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgba[:3])
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.179 else "white"
