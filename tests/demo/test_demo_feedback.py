"""The demo under real use: batched serving, no silent fallbacks, real progress, what training changed, text-only
models, the difference heatmap and load failures in the terminal. Real tiny models, real files, no mocks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from contrastkit.demo import app, compare, core, corpus, render

MB = 2**20


@pytest.fixture(scope="module")
def text_slots(tiny_text_model):
    return [core.load_slot("base", tiny_text_model), core.load_slot("fine-tuned", tiny_text_model)]


@pytest.fixture(scope="module")
def two_models(tiny_text_model, tmp_path_factory):
    """A text base and a different text 'fine-tuned' model (a tiny CLIP, which embeds text too)."""
    from contrastkit.plugins.st.clip import build_tiny_clip

    clip = build_tiny_clip(tmp_path_factory.mktemp("tiny-clip-feedback"))
    return [core.load_slot("base", tiny_text_model), core.load_slot("fine-tuned", str(clip))]


# --------------------------------------------------------------------------- batching
def test_a_batch_of_compares_gives_each_request_its_own_scores(two_models):
    requests = [("how do I boil pasta", "cook noodles\nthe market fell"), ("", "x"),
                ("reset the router", "unplug it for ten seconds")]
    results = compare.compare_texts_many(two_models, requests)
    assert isinstance(results[1], core.DemoInputError)
    for (a, b), got in zip([requests[0], requests[2]], [results[0], results[2]]):
        alone = compare.compare_texts(two_models, a, b)
        assert got.rows == alone.rows
        for role in ("base", "fine-tuned"):
            np.testing.assert_allclose(got.by_model[role], alone.by_model[role], atol=1e-5)
    handler = app._guard_batch(lambda a, b: [render.scores_table(r, two_models) if isinstance(r, core.Scores)
                                             else r for r in compare.compare_texts_many(two_models, list(zip(a, b)))])
    [outputs] = handler(*map(list, zip(*requests)))
    assert len(outputs) == 3 and 'data-model="delta"' in outputs[0] and 'data-model="delta"' in outputs[2]
    assert 'class="ck-message"' in outputs[1] and "Type a text" in outputs[1]


def test_a_failing_batch_answers_every_request_in_its_page():
    def broken(a, b):
        raise RuntimeError("model exploded")

    [outputs] = app._guard_batch(broken)(["a", "b"], ["c", "d"])
    assert len(outputs) == 2 and all("model exploded" in o and "ck-message" in o for o in outputs)


def test_the_served_compare_is_batched_with_a_deliberate_concurrency(text_slots, tiny_text_model):
    demo = app.build_demo(app.DemoConfig(model=tiny_text_model, compare_to=tiny_text_model))
    fn = next(f for f in demo.fns.values() if f.api_name == "compare_texts")
    assert fn.batch and fn.max_batch_size == app.BATCH and fn.concurrency_limit == 1
    assert _triggers(demo, "compare_texts") == {("Compare texts", "click"), ("Text A", "submit")}  # Enter compares
    assert _triggers(demo, "search") == {("Search", "click"), ("Query", "submit")}


def _triggers(demo, api_name: str) -> set[tuple[str, str]]:
    """What starts an event: (button text or box label, event), e.g. ('Text A', 'submit') for Enter in Text A."""
    fn = next(f for f in demo.fns.values() if f.api_name == api_name)
    return {(getattr(demo.blocks[i], "label", None) or demo.blocks[i].value, event) for i, event in fn.targets}


# --------------------------------------------------------------------------- never fall back silently
def test_a_csv_without_a_known_text_column_is_refused_with_the_accepted_names(tmp_path):
    csv_file = tmp_path / "prices.csv"
    csv_file.write_text("name,price\napple,3\npear,4\n")
    with pytest.raises(core.DemoInputError) as err:
        corpus.read_corpus(str(csv_file), MB)
    assert "prices.csv" in str(err.value) and "name, price" in str(err.value)
    assert all(c in str(err.value) for c in corpus.CORPUS_COLUMNS)


def test_a_semicolon_or_tab_csv_corpus_is_read_on_its_answer_column(tmp_path):
    for name, sep in (("excel.csv", ";"), ("tabs.csv", "\t")):
        (tmp_path / name).write_text(f"question{sep}answer\nwhy?{sep}because, mostly\nhow?{sep}carefully\n")
        docs, label = corpus.read_corpus(str(tmp_path / name), MB)
        assert docs == ["because, mostly", "carefully"] and "column 'answer'" in label


def test_a_csv_corpus_with_a_passage_longer_than_csvs_default_field_limit_is_read_and_cut(tmp_path):
    """csv refuses a field over 131,072 characters unless told otherwise (a fresh process is); such a passage is
    a document like any other: cut to MAX_CHARS, with the note, not refused as invalid CSV."""
    import csv

    passage = "word " * 40_000  # 200,000 characters in one quoted field
    path = tmp_path / "long.csv"
    path.write_text(f'question,answer\nq1,"{passage}"\nq2,short answer\n')
    limit = csv.field_size_limit(131_072)  # Python's default, as in a fresh `contrastkit demo`
    try:
        docs, lines, _, notes = corpus._read_corpus(str(path), MB)
    finally:
        csv.field_size_limit(limit)
    assert docs == [passage.strip()[:core.MAX_CHARS], "short answer"] and lines == [2, 3]
    assert "only the first 20,000 of it are used (line 2)" in notes[0]


def test_a_corpus_that_is_not_utf8_says_what_it_is_and_how_to_resave_it(tmp_path):
    for name, data, what in (("excel.txt", "one\ntwo\n".encode("utf-16"), "it starts as UTF-16 does"),
                             ("latin.csv", "answer\ncaf\u00e9\n".encode("latin-1"), "byte 0xe9 at offset 10")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(core.DemoInputError) as err:
            corpus.read_corpus(str(tmp_path / name), MB)
        assert f"{name} is not UTF-8 text ({what}" in str(err.value) and "re-save it as UTF-8" in str(err.value)


def test_a_jsonl_corpus_is_read_on_its_document_field_and_other_data_files_are_refused(tmp_path):
    """The recipes take .jsonl, so the file a model trained on can be searched: on its document field, never as
    raw JSON lines. A .json or .parquet file is refused by name instead of searched line by line."""
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"question": "why?", "answer": "because"}\n\n{"question": "how?", "answer": "carefully"}\n')
    docs, lines, label, _ = corpus._read_corpus(str(path), MB)
    assert docs == ["because", "carefully"] and lines == [1, 3] and "field 'answer'" in label
    path.write_text('{"question": "why?", "answer": "because"}\n["not", "an", "object"]\n')
    with pytest.raises(core.DemoInputError, match="pairs.jsonl line 2 is not a JSON object"):
        corpus.read_corpus(str(path), MB)
    path.write_text('{"question": "why?", "reply": "because"}\n')
    with pytest.raises(core.DemoInputError, match="no field the demo searches; its fields are question, reply"):
        corpus.read_corpus(str(path), MB)
    for name in ("pairs.json", "pairs.parquet"):
        (tmp_path / name).write_text('[{"answer": "because"}]\n')
        with pytest.raises(core.DemoInputError, match=f"{name} is a .{name.split('.')[1]} file, which the search "
                                                      f"does not read; upload a corpus as .txt"):
            corpus.read_corpus(str(tmp_path / name), MB)


def test_an_oversized_corpus_is_reported_in_the_page_and_nothing_is_searched(text_slots, tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("a document\n" * 200_000)  # 2.2 MB
    html = app._guard(lambda q, c: render.hits_table(corpus.search(text_slots, q, c, 3, MB), text_slots))(
        "query", str(big))
    assert "ck-message" in html and "big.txt is larger than 1 MB" in html
    assert "ck-table" not in html and "bundled" not in html  # no results, and not the bundled corpus instead
    # Gradio's own limit (which only shows a browser popup) sits well above the demo's, so a file over
    # max_upload_mb reaches the demo and gets this message in the page.
    cfg = app.DemoConfig(max_upload_mb=1)
    assert app.upload_ceiling(cfg) == app.UPLOAD_CEILING * MB > big.stat().st_size


def test_an_empty_corpus_field_says_it_searches_the_bundled_answers(text_slots):
    hits = corpus.search(text_slots, "pasta", None, 3, MB)
    assert "Searching 360 documents from the bundled FAQ answers (column &#x27;answer&#x27;; no file uploaded)." in \
        render.hits_table(hits, text_slots)


# --------------------------------------------------------------------------- progress and cache
def test_embedding_a_corpus_reports_progress_once_and_is_cached(text_slots, tmp_path):
    docs = tmp_path / "many.txt"
    docs.write_text("".join(f"document number {i} about topic {i % 7}\n" for i in range(150)))
    calls: list[tuple[int, int, str]] = []
    corpus.search(text_slots[:1], "topic 3", str(docs), 3, MB, lambda d, t, w: calls.append((d, t, w)))
    assert [d for d, _, _ in calls] == [0, 64, 128, 150] and all(t == 150 for _, t, _ in calls)
    assert "base model: embedding the corpus" in calls[0][2]
    calls.clear()
    corpus.search(text_slots[:1], "topic 5", str(docs), 3, MB, lambda d, t, w: calls.append((d, t, w)))
    assert calls == []  # cached: the second query embeds only itself


def test_the_search_handler_takes_gradios_progress(tiny_text_model):
    import inspect

    import gradio as gr

    demo = app.build_demo(app.DemoConfig(model=tiny_text_model, compare_to=tiny_text_model))
    fn = next(f for f in demo.fns.values() if f.api_name == "search")
    params = inspect.signature(fn.fn).parameters
    assert isinstance(params["progress"].default, gr.Progress)


# --------------------------------------------------------------------------- what training changed
def test_search_shows_how_far_each_document_moved(two_models):
    hits = corpus.search(two_models, "how do I keep pasta from sticking", None, 5, MB)
    base_ranks = hits.ranks["base"]
    assert [base_ranks[d] for d, _ in hits.by_model["base"]] == [1, 2, 3, 4, 5]
    html = render.hits_table(hits, two_models)
    for rank, (doc, _) in enumerate(hits.by_model["fine-tuned"], 1):
        assert f'data-moved="{base_ranks[doc] - rank}"' in html
    assert render.move_badge(2, 7).startswith('<span class="ck-move" data-moved="5"') and "▲5" in render.move_badge(2, 7)
    assert "▼3" in render.move_badge(4, 1) and render.DOWN in render.move_badge(4, 1)


def test_the_header_shows_the_runs_before_after_metrics(tiny_text_model, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_text_model, run)
    rows = {"heldout_cosine_mrr@10": {"before": 0.8333, "after": 0.9306, "delta": 0.0972},
            "heldout_cosine_recall@10": {"before": 1.0, "after": 1.0, "delta": 0.0}}
    (run / "metrics.json").write_text(json.dumps({"before_after": rows}))
    _, status = app.load_slots(app.DemoConfig(model=str(run), compare_to=tiny_text_model))
    assert "cosine_mrr@10 0.833 → 0.931" in status and "+0.097" in status
    assert render.training_summary(None) == ""


def test_the_page_says_how_to_read_the_scores():
    assert "How to read the scores" in app.HOW_TO_READ and "green" in app.HOW_TO_READ


# --------------------------------------------------------------------------- text-only models
def test_text_only_models_get_one_clear_note_and_disabled_image_buttons(tiny_text_model):
    demo = app.build_demo(app.DemoConfig(model=tiny_text_model, compare_to=tiny_text_model))
    config = demo.get_config_file()
    by_id = {c["id"]: c for c in config["components"]}
    buttons = {c["props"].get("value"): c["props"].get("interactive") for c in by_id.values() if c["type"] == "button"}
    assert buttons["Compare images"] is False and buttons["Match texts to image"] is False
    assert buttons["Compare texts"] is not False and buttons["Search"] is not False
    notes = [c["props"]["value"] for c in by_id.values() if c["type"] == "markdown" and "needs a model" in
             str(c["props"].get("value"))]
    assert len(notes) == 2
    assert "embeds images; the loaded models (base, fine-tuned) embed text only" in notes[0]
    assert "embeds both texts and images" in notes[1] and "embeds image " not in " ".join(notes)


# --------------------------------------------------------------------------- the difference heatmap
def test_the_difference_heatmap_uses_the_tables_colours_on_a_fixed_scale(text_slots):
    from matplotlib.colors import to_hex

    labels = ["a", "b", "c"]
    base = np.eye(3)
    tuned = base + np.array([[0, 0.02, -0.3], [0.02, 0, 0.9], [-0.3, 0.9, 0]])
    fig = render.heatmaps(labels, {"base": base, "fine-tuned": tuned}, text_slots)
    diff_ax = next(ax for ax in fig.axes if ax.get_title().startswith("difference"))
    image = diff_ax.get_images()[0]
    assert image.get_clim() == (-render.DIFF_SCALE, render.DIFF_SCALE)  # not stretched to the largest (0.9)
    cmap = image.get_cmap()
    assert to_hex(cmap(1.0)) == render.UP and to_hex(cmap(0.0)) == render.DOWN
    texts = {t.get_text(): t.get_color() for t in diff_ax.texts}
    assert texts["+0.90"] == "white" and texts["+0.02"] == "black"  # readable on dark and light cells
    assert render.text_colour((0.0, 0.0, 0.3, 1)) == "white" and render.text_colour((1, 1, 0.8, 1)) == "black"


# --------------------------------------------------------------------------- load failures
def test_a_model_that_cannot_load_is_reported_in_the_terminal_too(tiny_text_model, tmp_path, capsys):
    _, status = app.load_slots(app.DemoConfig(model=str(tmp_path / "nope"), compare_to=tiny_text_model))
    err = capsys.readouterr().err
    assert "could not be loaded" in status
    warning = [line for line in err.splitlines() if line.startswith("contrastkit: warning: the fine-tuned model")]
    assert len(warning) == 1 and str(tmp_path / "nope") in warning[0]  # beside transformers' loading bar, if any


def test_when_no_model_loads_the_demo_is_refused_and_a_port_in_use_before_any_model_loads(tmp_path):
    import socket

    from contrastkit.plugins.errors import UserError

    cfg = app.DemoConfig(model=str(tmp_path / "nope"), compare_to=str(tmp_path / "gone"))
    with pytest.raises(UserError, match=r"no model could be loaded: the base model .*gone.*; the fine-tuned model"):
        app.load_slots(cfg)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(UserError, match=rf"cannot serve on 127.0.0.1:{port} \(Address already in use\); pass "
                                            rf"another port=, e.g. port={port + 1}"):
            app.launch(app.DemoConfig(model=str(tmp_path / "nope"), port=port))  # says so before loading


# --------------------------------------------------------------------------- the default example
@pytest.mark.slow
def test_the_default_example_shows_what_training_changed(tmp_path):
    """The text recipe's defaults on the bundled FAQ pairs (MiniLM, ~1 minute on 2 cores), then the demo's
    default example (a held-out pair): the base model prefers the wrong answer, the fine-tuned model the right
    one, and the right answer's difference is highlighted. The run goes through the CLI's entry point in this
    process: what is checked is the model it trains, and a fresh process would only add its imports."""
    import os

    import torch
    from contrastkit.recipes.cli import main

    out = tmp_path / "run"
    threads = torch.get_num_threads()  # build_demo above left this process at its cpu_threads=1
    torch.set_num_threads(len(os.sched_getaffinity(0)))  # what the run gets in a process of its own
    try:
        assert main(["run", "text", f"output_dir={out}", "epochs=1"]) == 0
    finally:
        torch.set_num_threads(threads)
    slots, status = app.load_slots(app.DemoConfig(model=str(out)))
    assert "Training changed" in status
    result = compare.compare_texts(slots, app.TEXT_A, app.TEXTS_B)
    base, tuned = result.by_model["base"], result.by_model["fine-tuned"]
    assert base[0] < base[1] and tuned[0] > tuned[1]  # row 0 is the right answer, row 1 the near miss
    import datasets
    from contrastkit.plugins.splits import split_train_eval

    faq = Path(app.__file__).resolve().parents[1] / "recipes" / "sample_data" / "faq_pairs.csv"
    trained, held_out = split_train_eval(datasets.load_dataset("csv", data_files=str(faq), split="train"))
    assert app.TEXT_A in held_out["question"] and app.TEXT_A not in trained["question"]
    assert tuned[0] - base[0] >= render.NOTICEABLE
    assert "font-weight:bold" in render.scores_table(result, slots).split("<tr>")[2]


def test_heatmap_labels_no_font_can_draw_are_numbered_not_boxes(text_slots):
    import io
    import warnings

    labels = ["猫が好き", "犬が好き", "a plain label"]
    base = np.eye(3)
    fig = render.heatmaps(labels, {"base": base, "fine-tuned": base}, text_slots)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)" while drawing
        fig.savefig(io.BytesIO(), format="png")
    from contrastkit.plugins.report import label_font

    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == (["#1", "#2", "#3"] if label_font(labels) is None else labels)
