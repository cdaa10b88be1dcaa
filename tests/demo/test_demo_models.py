"""The demo with a reranker (CrossEncoder) or a sparse encoder on either side: real tiny models (a rerank and a
sparse run of the recipes, max_steps=2, on the tiny BERT), real files, no mocks."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from contrastkit.demo import app, compare, core, corpus, render

MB = 2**20
QUERY = "question number 3 about topic 3?"


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """30 question/answer rows: the recipes train on them, and search uses them as its corpus."""
    import csv

    path = tmp_path_factory.mktemp("pairs") / "pairs.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["question", "answer"])
        w.writerows((f"question number {i} about topic {i % 6}?", f"answer {i}: the reply for topic {i % 6} item {i}.")
                    for i in range(30))
    return path


@pytest.fixture(scope="module")
def rerank_run(tiny_text_model, pairs, tmp_path_factory) -> str:
    """A rerank run (2 steps) whose retriever is the tiny bi-encoder and whose top_k is 5."""
    from contrastkit.recipes import rerank

    out = tmp_path_factory.mktemp("rerank") / "run"
    rerank.run(data=str(pairs), model=tiny_text_model, retriever=tiny_text_model, top_k=5, max_steps=2,
               batch_size=8, precision="fp32", output_dir=str(out))
    return str(out)


@pytest.fixture(scope="module")
def sparse_run(tiny_text_model, pairs, tmp_path_factory) -> str:
    """A sparse run (2 steps, CSR head on the tiny bi-encoder)."""
    from contrastkit.recipes import sparse

    out = tmp_path_factory.mktemp("sparse") / "run"
    sparse.run(data=str(pairs), model=tiny_text_model, active_dims=16, max_steps=2, batch_size=8,
               precision="fp32", output_dir=str(out))
    return str(out)


@pytest.fixture(scope="module")
def dot_sparse(sparse_run, tmp_path_factory) -> str:
    """The sparse run's model with sentence-transformers' default similarity for a SparseEncoder (the dot product;
    the run inherited 'cosine' from the tiny bi-encoder's folder)."""
    from sentence_transformers import SparseEncoder

    model = SparseEncoder(sparse_run, device="cpu")
    model.similarity_fn_name = "dot"
    out = tmp_path_factory.mktemp("dot-sparse")
    model.save(str(out))
    return str(out)


def _dense(emb) -> np.ndarray:
    return emb.to_dense().numpy() if getattr(emb, "is_sparse", False) else np.asarray(emb)


# --------------------------------------------------------------------------- what each model is
def test_each_kind_is_recognised_with_what_its_numbers_are(tiny_text_model, rerank_run, dot_sparse, sparse_run):
    dense, cross = core.load_slot("base", tiny_text_model), core.load_slot("fine-tuned", rerank_run)
    dot, cosine = core.load_slot("base", dot_sparse), core.load_slot("base", sparse_run)
    assert [s.kind for s in (dense, cross, dot)] == ["dense", "cross", "sparse"]
    assert [s.score_name for s in (dense, cross, dot, cosine)] == ["cosine similarity", "relevance score",
                                                                   "dot product", "cosine similarity"]
    assert cross.modalities == dot.modalities == ("text",)  # text-only, not mistaken for an image encoder
    assert cross.describe_kind() == "text reranker" and dot.describe_kind() == "sparse text model"
    assert core.same_scale([dot, core.load_slot("fine-tuned", dot_sparse)]) and not core.same_scale([dense, cross])


# --------------------------------------------------------------------------- sparse models
def test_search_with_a_sparse_model_ranks_by_its_dot_product(tiny_text_model, dot_sparse, pairs):
    slots = [core.load_slot("base", tiny_text_model), core.load_slot("fine-tuned", dot_sparse)]
    hits = corpus.search(slots, QUERY, str(pairs), 5, MB)
    docs, _ = corpus.read_corpus(str(pairs), MB)
    model = slots[1].model
    q = _dense(model.encode_query([QUERY], convert_to_sparse_tensor=False, convert_to_tensor=True))
    d = _dense(model.encode_document(docs, convert_to_sparse_tensor=False, convert_to_tensor=True))
    dots = d @ q[0]
    assert np.abs(np.linalg.norm(d, axis=1) - 1).max() > 0.01  # not unit vectors: a dot product is not a cosine
    expected = np.argsort(-dots, kind="stable")[:5]
    got = hits.by_model["fine-tuned"]
    assert [doc for doc, _ in got] == [docs[i] for i in expected]
    np.testing.assert_allclose([s for _, s in got], dots[expected], rtol=1e-4)
    assert all(a >= b for (_, a), (_, b) in itertools.pairwise(got))
    assert [hits.ranks["fine-tuned"][doc] for doc, _ in got] == [1, 2, 3, 4, 5]
    html = render.hits_table(hits, slots)
    assert html.count('class="ck-move"') == 5  # the before/after moves, as for two bi-encoders
    assert '<small class="ck-kind">dot product</small>' in html and "ck-rerank-move" not in html
    corpus.search(slots, "another query", str(pairs), 5, MB)  # the sparse corpus rows are cached and reused
    assert sum(1 for m, *_ in corpus._CORPUS_CACHE.values() if m is model) == 1


def test_text_compare_with_a_sparse_model_is_labelled_a_dot_product(dot_sparse, sparse_run):
    slots = [core.load_slot("base", sparse_run), core.load_slot("fine-tuned", dot_sparse)]
    result = compare.compare_texts(slots, "how do I boil pasta", "cook noodles in water\nthe market fell")
    emb = _dense(slots[1].model.encode(["how do I boil pasta", *result.rows], convert_to_sparse_tensor=False,
                                       convert_to_tensor=True))
    np.testing.assert_allclose(result.by_model["fine-tuned"], emb[1:] @ emb[0], rtol=1e-4)
    np.testing.assert_allclose(result.by_model["base"], (emb[1:] @ emb[0]) / np.linalg.norm(emb[1:], axis=1)
                               / np.linalg.norm(emb[0]), atol=1e-4)  # the same vectors, its own cosine
    html = render.scores_table(result, slots)
    assert "dot product" in html and 'data-model="delta"' not in html  # a cosine minus a dot product means nothing
    text = app.how_to_read(slots)
    assert "dot product of two sparse vectors" in text and "cosine similarity of two embeddings" in text
    labels, matrices, _ = compare.similarity_matrix(slots, "how do I boil pasta\n" + "\n".join(result.rows), None, MB)
    np.testing.assert_allclose(matrices["fine-tuned"], emb @ emb.T, rtol=1e-4)
    fig = render.heatmaps(labels, matrices, slots)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()][1].endswith("dot product")  # and no difference
    assert len([ax for ax in fig.axes if ax.get_title()]) == 2


# --------------------------------------------------------------------------- rerankers
def test_a_reranker_gets_the_retriever_and_top_k_its_run_used(tiny_text_model, rerank_run):
    metrics = json.loads((Path(rerank_run) / "metrics.json").read_text())
    assert metrics["retriever"] == tiny_text_model and metrics["top_k"] == 5
    slots, status = app.load_slots(app.DemoConfig(model=rerank_run, compare_to=tiny_text_model))
    cross = slots[1]
    assert cross.retriever.name == tiny_text_model and cross.top_k == 5 and cross.retriever_from_run
    assert cross.retriever.model is slots[0].model  # the same bi-encoder is loaded once
    assert "(text reranker)" in status and f"top 5 of `{tiny_text_model}`, the retriever its run used" in status


def test_search_with_a_reranker_reranks_the_retrievers_top_k_and_shows_the_moves(tiny_text_model, rerank_run,
                                                                                  pairs):
    slots = [core.load_slot("base", tiny_text_model), core.load_slot("fine-tuned", rerank_run)]
    docs, _ = corpus.read_corpus(str(pairs), MB)
    hits = corpus.search(slots, QUERY, str(pairs), 3, MB)
    retriever = slots[0].model  # the run's retriever is the tiny bi-encoder, also the base here
    emb = retriever.encode([QUERY, *docs], normalize_embeddings=True)
    top5 = [docs[i] for i in np.argsort(-(emb[1:] @ emb[0]), kind="stable")[:5]]
    assert hits.retrieved["fine-tuned"] == {doc: r for r, doc in enumerate(top5, 1)}  # the candidates, in order
    relevance = slots[1].model.predict([(QUERY, doc) for doc in top5])
    expected = [top5[i] for i in np.argsort(-relevance, kind="stable")]
    assert [doc for doc, _ in hits.by_model["fine-tuned"]] == expected[:3]
    np.testing.assert_allclose([s for _, s in hits.by_model["fine-tuned"]], np.sort(relevance)[::-1][:3], atol=1e-6)
    assert any("reranker rescored the top 5 of 30 documents" in n for n in hits.notes)
    html = render.hits_table(hits, slots)
    for rank, doc in enumerate(expected[:3], 1):
        moved = hits.retrieved["fine-tuned"][doc] - rank
        assert f'class="ck-rerank-move" data-moved="{moved}"' in html  # against the retriever's order
        assert f'class="ck-move" data-moved="{hits.ranks["base"][doc] - rank}"' in html  # and against the base
    assert "(retriever #" in html and "relevance score" in html
    assert {d for d, _ in hits.by_model["fine-tuned"]} <= set(top5)  # nothing outside the candidates


def test_a_reranker_folder_that_names_no_retriever_falls_back_to_minilm_and_says_so(rerank_run, tmp_path, pairs):
    bare = tmp_path / "bare"
    shutil.copytree(rerank_run, bare, ignore=shutil.ignore_patterns("metrics.json", "config.yaml", "checkpoints"))
    slots, status = app.load_slots(app.DemoConfig(model=str(bare), compare_to=str(bare)))
    assert slots[1].retriever.name == "all-MiniLM-L6-v2" and not slots[1].retriever_from_run
    assert slots[1].top_k == 20 and slots[1].retriever.model.get_embedding_dimension() == 384
    assert "ℹ️ The fine-tuned reranker: its folder does not say which retriever its run used" in status
    hits = corpus.search(slots, QUERY, str(pairs), 3, MB)
    assert any("does not say which retriever" in n for n in hits.notes)
    assert len(hits.retrieved["fine-tuned"]) == 20 and len(hits.by_model["fine-tuned"]) == 3


def test_config_yaml_names_the_retriever_when_metrics_json_is_missing(rerank_run, tiny_text_model, tmp_path):
    only_config = tmp_path / "only-config"
    shutil.copytree(rerank_run, only_config, ignore=shutil.ignore_patterns("metrics.json", "checkpoints"))
    slot = core.load_slot("fine-tuned", str(only_config))
    assert slot.retriever.name == tiny_text_model and slot.top_k == 5 and "(config.yaml)" in slot.retriever_note
    (only_config / "config.yaml").write_text(f"retriever: {tmp_path / 'gone'}\ntop_k: 7\n")
    slot = core.load_slot("fine-tuned", str(only_config))
    assert slot.retriever.name == "all-MiniLM-L6-v2" and slot.top_k == 7
    assert f"`{tmp_path / 'gone'}`, could not be loaded" in slot.retriever_note and "does not exist" in \
        slot.retriever_note


def test_text_compare_with_a_reranker_shows_relevance_scores(tiny_text_model, rerank_run, dot_sparse):
    slots = [core.load_slot("base", tiny_text_model), core.load_slot("fine-tuned", rerank_run)]
    result = compare.compare_texts(slots, "how do I boil pasta", "cook noodles in water\nthe market fell")
    expected = slots[1].model.predict([("how do I boil pasta", t) for t in result.rows])
    np.testing.assert_allclose(result.by_model["fine-tuned"], expected, atol=1e-6)
    html = render.scores_table(result, slots)
    assert '<small class="ck-kind">relevance score</small>' in html and 'data-model="delta"' not in html
    assert "relevance score (reranker), from 0 to 1" in html and html.count('class="ck-order"') == 4
    text = app.how_to_read(slots)
    assert "relevance score" in text and "it is not a cosine" in text and "no difference column" in text
    two = [core.load_slot("base", rerank_run), core.load_slot("fine-tuned", rerank_run)]
    html = render.scores_table(compare.compare_texts(two, "a", "b"), two)
    assert 'data-model="delta"' in html and "cosine" not in html  # same kind of number: the difference is shown
    assert "cosine similarity" not in app.how_to_read(two) and "green" in app.how_to_read(two)
    assert "highlighted when it is 0.05 or more" in app.header(two) and "highlighted" not in app.header(slots)
    dots = [core.load_slot("base", dot_sparse), core.load_slot("fine-tuned", dot_sparse)]
    assert "highlighted when it is 5% of the larger score or more" in app.header(dots)


def test_a_long_pair_is_reported_truncated_for_the_reranker(rerank_run):
    slots = [core.load_slot("fine-tuned", rerank_run)]
    limit = slots[0].model.max_seq_length
    result = compare.compare_texts(slots, "pasta " * (limit - 10), "short\n" + "noodles " * 10)  # text 3: too long
    assert any(n.startswith("Text A with text 3 is") and f"reads only the first {limit} of a pair" in n
               for n in result.notes)


def test_the_matrix_of_a_reranker_scores_every_ordered_pair(tiny_text_model, rerank_run):
    slots = [core.load_slot("base", tiny_text_model), core.load_slot("fine-tuned", rerank_run)]
    texts = ["boil pasta", "reset the router", "cook noodles"]
    labels, matrices, _ = compare.similarity_matrix(slots, "\n".join(texts), None, MB)
    expected = slots[1].model.predict([(a, b) for a in texts for b in texts]).reshape(3, 3)
    np.testing.assert_allclose(matrices["fine-tuned"], expected, atol=1e-6)
    fig = render.heatmaps(labels, matrices, slots)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 2 and "relevance score" in titles[1]  # no difference panel across kinds of score
    assert titles[0].endswith("\ncosine similarity")  # each panel says which kind of number it shows
    assert fig.axes[1].get_images()[0].get_clim() == (0.0, 1.0)


# --------------------------------------------------------------------------- the image tabs
def test_image_tabs_say_a_reranker_or_sparse_model_is_text_only(rerank_run, dot_sparse):
    cfg = app.DemoConfig(model=rerank_run, compare_to=dot_sparse)
    slots, _ = app.load_slots(cfg)
    with pytest.raises(core.DemoInputError, match="the loaded models \\(base, fine-tuned\\) embed text only"):
        compare.compare_images(slots, *app.EXAMPLE_IMAGES[:2], 10 * MB)
    with pytest.raises(core.DemoInputError, match="embeds both texts and images"):
        compare.compare_text_image(slots, app.EXAMPLE_IMAGES[0], "a red circle", 10 * MB)
    config = app.build_demo(cfg).get_config_file()
    values = [str(c["props"].get("value")) for c in config["components"]]
    buttons = {c["props"].get("value"): c["props"].get("interactive") for c in config["components"]
               if c["type"] == "button"}
    assert buttons["Compare images"] is False and buttons["Match texts to image"] is False
    notes = [v for v in values if "needs a model" in v]  # the existing text-only notes, one per image tab
    assert len(notes) == 2 and "embeds images; the loaded models (base, fine-tuned) embed text only" in notes[0]
    assert "embeds both texts and images" in notes[1]
    assert any("dot product" in v and "relevance score" in v and "How to read" in v for v in values)
    head = app.header(slots)  # the page's first line does not promise a difference it never shows
    assert head in values and "highlighted" not in head and "no difference is shown" in head
    assert "different kinds of number (base: dot product, fine-tuned: relevance score)" in head


# --------------------------------------------------------------------------- what training changed
def test_the_header_shows_the_rerank_and_sparse_runs_metrics(tiny_text_model, rerank_run, sparse_run):
    _, status = app.load_slots(app.DemoConfig(model=rerank_run, compare_to=sparse_run))
    rerank_rows = json.loads((Path(rerank_run) / "metrics.json").read_text())["before_after"]
    r = rerank_rows["heldout_mrr@10"]
    assert f"mrr@10 {r['before']:.3f} → {r['after']:.3f}" in status
    own = rerank_rows["heldout_base_mrr@10"]["after"]
    assert f"the retriever's own order: mrr@10 {own:.3f}" in status and "base_mrr@10" not in status
    sparse_rows = json.loads((Path(sparse_run) / "metrics.json").read_text())["before_after"]
    dims = sparse_rows["heldout_query_active_dims"]
    assert f"query active dims {dims['before']:.1f} → {dims['after']:.1f}" in status
    mrr = next(k for k in sparse_rows if k.endswith("_mrr@10"))
    assert f"{mrr.removeprefix('heldout_')} {sparse_rows[mrr]['before']:.3f}" in status
    summary = render.training_summary({"before_after": {  # the names a sparse run on the packaged MiniLM writes
        "heldout_dot_mrr@10": {"before": 0.5, "after": 0.6, "delta": 0.1},
        "heldout_query_active_dims": {"before": 96.0, "after": 95.5, "delta": -0.5}}})
    assert "dot_mrr@10 0.500 → 0.600" in summary and "query active dims 96.0 → 95.5" in summary


# --------------------------------------------------------------------------- precision and batching
def test_bf16_and_batching_work_for_rerankers_and_sparse_models(rerank_run, dot_sparse):
    kw = {"model": rerank_run, "compare_to": dot_sparse}
    fp32, _ = app.load_slots(app.DemoConfig(precision="fp32", **kw))
    bf16, status = app.load_slots(app.DemoConfig(precision="bf16", **kw))
    assert "bf16 autocast" in status and all(s.bf16 for s in bf16)
    requests = [("how do I boil pasta", "cook noodles in water\nthe market fell"), ("", "x"),
                ("reset the router", "unplug it for ten seconds\nboil water")]
    exact, rounded = compare.compare_texts_many(fp32, requests), compare.compare_texts_many(bf16, requests)
    assert isinstance(exact[1], core.DemoInputError)
    for i in (0, 2):
        alone = compare.compare_texts(fp32, *requests[i])
        for role in ("base", "fine-tuned"):
            np.testing.assert_allclose(exact[i].by_model[role], alone.by_model[role], atol=1e-5)  # batched = alone
            gap = np.abs(np.subtract(exact[i].by_model[role], rounded[i].by_model[role])).max()
            scale = max(np.abs(exact[i].by_model[role]).max(), 1e-6)
            assert gap / scale < 0.05, (role, gap)
    gaps = [np.abs(np.subtract(exact[i].by_model[r], rounded[i].by_model[r])).max() for i in (0, 2)
            for r in ("base", "fine-tuned")]
    assert max(gaps) > 0  # autocast really ran
    demo = app.build_demo(app.DemoConfig(precision="bf16", **kw))
    fn = next(f for f in demo.fns.values() if f.api_name == "compare_texts")
    assert fn.batch and fn.max_batch_size == app.BATCH and fn.concurrency_limit == app.CONCURRENCY


# --------------------------------------------------------------------------- a reranker from the Hub
def test_a_reranker_from_the_hub_reads_its_retriever_from_the_downloaded_run_files(rerank_run, tiny_text_model,
                                                                                    tmp_path):
    """Pushed to a local Hub server and loaded by its repo id in a fresh process (huggingface_hub reads
    HF_ENDPOINT and HF_HOME at import): the snapshot's metrics.json still names the retriever."""
    import os
    import subprocess
    import sys

    from tests.hub_server import HubServer, new_token

    token = new_token("alice")
    server = HubServer({token: "alice"}).start()
    try:
        env = {**os.environ, "HF_ENDPOINT": server.url, "HF_TOKEN": token, "HF_HOME": str(tmp_path / "hf-home")}
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            env.pop(name, None)
        code = (f"from contrastkit.plugins import hub; hub.push({rerank_run!r}, 'alice/reranker')\n"
                "from contrastkit.demo import core\n"
                "s = core.load_slot('fine-tuned', 'alice/reranker')\n"
                "print(s.kind, s.top_k, s.retriever_from_run, s.retriever.name, sep='|')")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == f"cross|5|True|{tiny_text_model}"


def test_search_reads_a_models_query_and_document_prompts(tiny_text_model, pairs, tmp_path):
    """A model trained with prompts (the text recipe saves them) searches with them, as its evaluation did."""
    from sentence_transformers import SentenceTransformer

    prompted = tmp_path / "prompted"
    SentenceTransformer(tiny_text_model, device="cpu",
                        prompts={"query": "query: ", "document": "passage: "}).save(str(prompted))
    slots = [core.load_slot("base", tiny_text_model), core.load_slot("fine-tuned", str(prompted))]
    hits = corpus.search(slots, QUERY, str(pairs), 5, MB)
    docs, _ = corpus.read_corpus(str(pairs), MB)
    model = slots[1].model
    q = model.encode_query([QUERY], normalize_embeddings=True)
    d = model.encode_document(docs, normalize_embeddings=True)
    cosines = d @ q[0]
    expected = np.argsort(-cosines, kind="stable")[:5]
    got = hits.by_model["fine-tuned"]
    np.testing.assert_allclose([s for _, s in got], cosines[expected], rtol=1e-4)
    assert [doc for doc, _ in got] == [docs[i] for i in expected]


# --------------------------------------------------------------------------- models the demo cannot compare
def test_a_crossencoder_with_several_labels_is_refused_at_load_in_one_line(tiny_text_model, tmp_path):
    from sentence_transformers import CrossEncoder

    nli = tmp_path / "nli"
    CrossEncoder(tiny_text_model, num_labels=3, device="cpu").save(str(nli))
    slots, status = app.load_slots(app.DemoConfig(model=str(nli), compare_to=tiny_text_model, precision="fp32"))
    assert slots[1].model is None and slots[1].error and "\n" not in slots[1].error
    assert "3 output labels" in slots[1].error and "one relevance score" in slots[1].error
    assert "could not be loaded" in status and "3 output labels" in status
    # every tab runs the base alone, with no raw exception from the classifier in the page
    texts = compare.compare_texts(slots, QUERY, "answer 3: the reply for topic 3 item 3.\nunrelated")
    hits = corpus.search(slots, QUERY, None, 3, MB)
    for notes in (texts.notes, hits.notes):
        assert not any("failed on this input" in n for n in notes), notes
    assert texts.by_model["fine-tuned"] is None and texts.by_model["base"] is not None
    assert hits.by_model["base"] and hits.by_model["fine-tuned"] is None


# --------------------------------------------------------------------------- a folder that changes while loaded
def test_a_folder_retrained_into_another_kind_or_deleted_is_loaded_anew(tiny_text_model, sparse_run, tmp_path):
    from contrastkit.demo import retriever
    from contrastkit.plugins.errors import UserError

    folder = tmp_path / "run"
    shutil.copytree(tiny_text_model, folder)
    assert core.load_slot("fine-tuned", str(folder)).kind == "dense"
    first = retriever.load_retriever(str(folder))
    shutil.rmtree(folder)  # retrained in place (overwrite=true) into a sparse model
    shutil.copytree(sparse_run, folder, ignore=shutil.ignore_patterns("checkpoints"))
    again = core.load_slot("fine-tuned", str(folder))
    assert again.kind == "sparse" and again.error is None
    # one entry per folder: the model it replaced is not kept alive
    assert sum(k[0] == str(folder.resolve()) for k in core._LOADED) == 1
    shutil.rmtree(folder)
    gone = core.load_slot("fine-tuned", str(folder))
    assert gone.model is None and "neither an existing folder" in gone.error
    with pytest.raises(UserError):
        retriever.load_retriever(str(folder))
    shutil.copytree(tiny_text_model, folder)  # the same files written again are read again
    assert retriever.load_retriever(str(folder)) is not first


# --------------------------------------------------------------------------- long documents
def test_search_says_once_how_many_documents_the_reranker_and_its_retriever_cut(rerank_run, tmp_path):
    long = " ".join(f"word{i}" for i in range(200))  # far past the tiny models' 64 tokens
    lines = [f"answer {i}: the reply for topic {i % 6} item {i}." for i in range(8)]
    lines[2], lines[5], lines[6] = f"answer 2 {long}", f"answer 5 {long}", f"answer 6 {long}"
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(lines) + "\n")
    slots = [core.load_slot("fine-tuned", rerank_run)]
    notes = corpus.search(slots, QUERY, str(path), 8, MB).notes
    retrieved = [n for n in notes if "reads (64 tokens)" in n]
    reranked = [n for n in notes if "reranker reads" in n]
    assert len(retrieved) == 1 and "3 documents are longer" in retrieved[0], notes
    assert "first at lines 3 and 6" in retrieved[0]
    assert len(reranked) == 1 and "3 documents" in reranked[0] and "with the query" in reranked[0], notes


# --------------------------------------------------------------------------- checkpoints and unfinished runs
def test_a_reranker_checkpoint_reranks_its_runs_retriever_and_an_unfinished_run_names_its_newest_checkpoint(
        rerank_run, tiny_text_model, tmp_path):
    """checkpoint-N holds no run files: its retriever and top_k are the run's, two folders up, and the run's
    metrics (its final model's) are not shown for it. A run without a saved model names what to pass instead."""
    checkpoint = Path(rerank_run) / "checkpoints" / "checkpoint-2"
    slot = core.load_slot("fine-tuned", str(checkpoint))
    assert slot.kind == "cross" and slot.retriever_from_run and slot.top_k == 5
    assert slot.retriever.name == tiny_text_model
    _, status = app.load_slots(app.DemoConfig(model=str(checkpoint), compare_to=tiny_text_model))
    assert f"the checkpoint at step 2 of the run `{rerank_run}`" in status and "Training changed" not in status
    unfinished = tmp_path / "unfinished"  # what a run stopped after its second checkpoint leaves
    shutil.copytree(checkpoint.parent, unfinished / "checkpoints")
    record = json.loads((Path(rerank_run) / ".contrastkit-run.json").read_text())
    (unfinished / ".contrastkit-run.json").write_text(json.dumps({**record, "finished_steps": None}))
    for given in (unfinished, unfinished / "checkpoints"):
        error = core.load_slot("fine-tuned", str(given)).error
        assert error == (f"output folder '{unfinished}' holds a rerank run that has not saved its model yet (it "
                         f"stopped, or is still training); finish it from its last checkpoint with `contrastkit run "
                         f"rerank resume=true output_dir={unfinished}`; or pass its newest checkpoint, "
                         f"model={unfinished / 'checkpoints' / 'checkpoint-2'}")
    error = core.load_slot("fine-tuned", str(checkpoint.parent)).error
    assert f"pass the run folder, model={rerank_run}, for its final model, or one checkpoint" in error
