"""The plain functions behind the demo, without a browser: real tiny models, real files, no mocks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from contrastkit.demo import app, compare, core, corpus, inputs, render
from contrastkit.plugins.errors import UserError

from tests.conftest import run_cli, save_rotated_jpeg

MB = 2**20


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> str:
    """A tiny random CLIP folder (embeds texts and images), built by the image-text plugin."""
    from contrastkit.plugins.st.clip import build_tiny_clip

    return str(build_tiny_clip(tmp_path_factory.mktemp("tiny-clip")))


@pytest.fixture(scope="session")
def text_slots(tiny_text_model):
    return [core.load_slot("base", tiny_text_model), core.load_slot("fine-tuned", tiny_text_model)]


@pytest.fixture(scope="session")
def mixed_slots(tiny_text_model, tiny_clip):
    """A text-only base and an image-text 'fine-tuned' model: each tab must cope with both."""
    return [core.load_slot("base", tiny_text_model), core.load_slot("fine-tuned", tiny_clip)]


def test_compare_texts_gives_each_models_cosine(text_slots):
    result = compare.compare_texts(text_slots, "how do I boil pasta", "cook noodles in water\n\nthe market fell\n")
    assert result.rows == ["cook noodles in water", "the market fell"]
    emb = text_slots[0].model.encode(["how do I boil pasta", *result.rows], normalize_embeddings=True)
    np.testing.assert_allclose(result.by_model["base"], emb[1:] @ emb[0], atol=1e-5)
    assert result.by_model["base"] == pytest.approx(result.by_model["fine-tuned"])
    html = render.scores_table(result, text_slots)
    assert html.count('data-model="delta"') == 2 and "+0.0000" in html


def test_difference_is_highlighted_only_when_noticeable():
    assert "font-weight:bold" in render.delta_cell(0.12) and render.UP in render.delta_cell(0.12)
    assert render.DOWN in render.delta_cell(-0.2)
    assert "style" not in render.delta_cell(0.01)


@pytest.mark.parametrize("a, b", [("", "x"), ("x", ""), ("   ", "\n\n"), (None, None)])
def test_empty_text_input_is_a_friendly_message_not_an_error(text_slots, a, b):
    with pytest.raises(core.DemoInputError, match="Type a text"):
        compare.compare_texts(text_slots, a, b)
    html = app._guard(lambda x, y: compare.compare_texts(text_slots, x, y))(a, b)
    assert 'class="ck-message"' in html and "Type a text" in html


def test_long_text_is_truncated_and_the_page_says_so(text_slots):
    long_text = "pasta " * 300  # the tiny model reads 64 tokens
    result = compare.compare_texts(text_slots, long_text, "short text")
    assert any("Text 1 is" in n and "first 64" in n and "truncated" in n for n in result.notes)
    assert "truncated" in render.scores_table(result, text_slots)


def test_clip_without_a_token_limit_truncates_instead_of_crashing(mixed_slots):
    clip = mixed_slots[1]
    assert clip.model.max_seq_length == 77  # capped at the position embeddings on load
    result = compare.compare_texts(mixed_slots, "x" * 500, "y")
    assert result.by_model["fine-tuned"] is not None
    assert any("fine-tuned model reads only the first 77" in n for n in result.notes)


def test_images_are_scored_by_the_models_that_embed_them(mixed_slots):
    a, b = app.EXAMPLE_IMAGES[:2]
    result = compare.compare_images(mixed_slots, a, b, 10 * MB)
    assert result.by_model["base"] is None  # a text model cannot embed images
    images = [inputs.open_image(p, "x", MB) for p in (a, b)]
    emb = mixed_slots[1].model.encode(images, normalize_embeddings=True)
    assert result.by_model["fine-tuned"][0] == pytest.approx(float(emb[0] @ emb[1]), abs=1e-5)
    html = render.scores_table(result, mixed_slots, "pair")
    assert "does not embed this" in html and html.count("<img") == 2


def test_non_image_and_oversized_uploads_get_clear_messages(mixed_slots, tmp_path):
    from PIL import Image

    fake = tmp_path / "notes.png"
    fake.write_text("this is text, not a picture")
    with pytest.raises(core.DemoInputError, match=r"image B \(notes.png\) is not an image"):
        compare.compare_images(mixed_slots, app.EXAMPLE_IMAGES[0], str(fake), 10 * MB)
    with pytest.raises(core.DemoInputError, match="larger than 0 MB"):
        compare.compare_images(mixed_slots, app.EXAMPLE_IMAGES[0], app.EXAMPLE_IMAGES[1], 100)
    with pytest.raises(core.DemoInputError, match="Please upload image A"):
        compare.compare_images(mixed_slots, None, app.EXAMPLE_IMAGES[1], 10 * MB)
    huge = tmp_path / "poster.png"  # a few bytes on disk that say 30000 x 30000 pixels
    Image.new("1", (30000, 30000)).save(huge)
    with pytest.raises(core.DemoInputError, match=r"image B \(poster.png\) has more than 179 megapixels"):
        compare.compare_images(mixed_slots, app.EXAMPLE_IMAGES[0], str(huge), 10 * MB)


def test_text_image_needs_a_model_that_embeds_both(text_slots, mixed_slots):
    with pytest.raises(core.DemoInputError, match="embeds both texts and images"):
        compare.compare_text_image(text_slots, app.EXAMPLE_IMAGES[0], "a red circle", 10 * MB)
    result = compare.compare_text_image(mixed_slots, app.EXAMPLE_IMAGES[0], "a red circle\na blue square", 10 * MB)
    assert result.by_model["base"] is None and len(result.by_model["fine-tuned"]) == 2


def test_similarity_matrix_of_texts_and_images(mixed_slots):
    labels, matrices, _ = compare.similarity_matrix(mixed_slots, "one\ntwo\nthree", None, 10 * MB)
    assert labels == ["one", "two", "three"] and set(matrices) == {"base", "fine-tuned"}
    for m in matrices.values():
        np.testing.assert_allclose(np.diag(m), 1.0, atol=1e-5)
        np.testing.assert_allclose(m, m.T, atol=1e-6)
    fig = render.heatmaps(labels, matrices, mixed_slots)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()][-1].startswith("difference")
    labels, matrices, _ = compare.similarity_matrix(mixed_slots, "", app.EXAMPLE_IMAGES[:3], 10 * MB)
    assert list(matrices) == ["fine-tuned"] and matrices["fine-tuned"].shape == (3, 3)
    with pytest.raises(core.DemoInputError, match="at least two items"):
        compare.similarity_matrix(mixed_slots, "only one", None, 10 * MB)


def test_search_bundled_corpus_finds_an_exact_answer_and_caches_the_corpus(text_slots):
    docs, label = corpus.read_corpus(None, 10 * MB)
    assert "FAQ" in label and len(docs) > 100
    hits = corpus.search(text_slots, docs[7], None, 3, 10 * MB)
    assert hits.by_model["base"][0][0] == docs[7] and hits.by_model["base"][0][1] == pytest.approx(1.0, abs=1e-4)
    assert len(hits.by_model["fine-tuned"]) == 3
    cached = dict(corpus._CORPUS_CACHE)
    corpus.search(text_slots, "another query", None, 3, 10 * MB)
    assert corpus._CORPUS_CACHE == cached  # same keys, same arrays: the corpus was not embedded again
    html = render.hits_table(hits, text_slots)
    assert 'data-model="base" data-rank="1"' in html


def test_search_reads_uploaded_txt_and_csv(text_slots, tmp_path):
    txt = tmp_path / "docs.txt"
    txt.write_text("boil the pasta\n\nreset the router\nboil the pasta\n")
    assert corpus.read_corpus(str(txt), MB) == (["boil the pasta", "reset the router"], "docs.txt")
    csv_file = tmp_path / "faq.csv"
    csv_file.write_text('question,answer\n"q1?","reply one"\n"q2?","reply two"\n')
    docs, label = corpus.read_corpus(str(csv_file), MB)
    assert docs == ["reply one", "reply two"] and "answer" in label
    hits = corpus.search(text_slots, "reply two", str(csv_file), 5, MB)
    assert hits.by_model["base"][0][0] == "reply two" and len(hits.by_model["base"]) == 2
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(core.DemoInputError, match="blob.txt is not UTF-8 text"):
        corpus.read_corpus(str(binary), MB)
    with pytest.raises(core.DemoInputError, match="Type a query"):
        corpus.search(text_slots, "  ", None, 3, MB)
    ragged = tmp_path / "ragged.csv"  # the quote never closes: without a check, the rest is one document
    ragged.write_text('text,b\n"unterminated,1\nfoo,2\n')
    with pytest.raises(core.DemoInputError, match=r"ragged.csv is not valid CSV \(unexpected end of data\)"):
        corpus.read_corpus(str(ragged), MB)


def test_a_model_that_fails_to_load_is_reported_and_the_other_still_works(tiny_text_model, tmp_path):
    cfg = app.DemoConfig(model=str(tmp_path / "missing-model"), compare_to=tiny_text_model)
    slots, status = app.load_slots(cfg)
    assert slots[1].error and slots[1].model is None
    assert "could not be loaded" in status and "keeps running" in status
    result = compare.compare_texts(slots, "a", "b")
    assert result.by_model["fine-tuned"] is None and result.by_model["base"] is not None


def test_without_outputs_only_the_base_is_shown(tiny_text_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    slots, status = app.load_slots(app.DemoConfig(compare_to=tiny_text_model))
    assert [s.role for s in slots] == ["base"] and "No fine-tuned model found" in status


def test_the_newest_output_is_the_default_fine_tuned_model(tiny_text_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "outputs" / "text-20260101-000000"
    shutil.copytree(tiny_text_model, run)
    (run / "config.yaml").write_text("model: all-MiniLM-L6-v2\n")
    slots, status = app.load_slots(app.DemoConfig(compare_to=tiny_text_model))
    assert slots[1].name == str(run.relative_to(tmp_path)) and slots[1].error is None
    assert "No fine-tuned" not in status


def test_importing_the_app_loads_no_heavy_library():
    code = ("import sys, contrastkit.demo.app; "
            "print(sorted(m for m in ('torch', 'gradio', 'sentence_transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bad_demo_options_exit_2_with_one_line():
    for option, words in (("port=0", "not a TCP port"), ("max_upload_mb=-1", "must be positive")):
        proc = run_cli("demo", option, timeout=120)
        assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    with pytest.raises(UserError, match="port"):
        app.DemoConfig(port=70000).validate()


@pytest.fixture(scope="session")
def tiny_image_encoder(tmp_path_factory) -> str:
    """A contrastkit image output (tiny CNN, random weights) saved by the vision plugin."""
    from contrastkit.plugins.vision.backbones import create_backbone
    from contrastkit.plugins.vision.encoder import save_encoder

    net, spec = create_backbone("tiny-cnn")
    folder = tmp_path_factory.mktemp("tiny-image-encoder")
    save_encoder(net.eval(), {**spec, "image_size": 32}, folder)
    return str(folder)


def test_an_image_encoder_output_compares_images_only(tiny_text_model, tiny_image_encoder):
    slots = [core.load_slot("base", tiny_text_model), core.load_slot("fine-tuned", tiny_image_encoder)]
    assert slots[1].modalities == ("image",) and slots[1].error is None
    a, b = app.EXAMPLE_IMAGES[:2]
    result = compare.compare_images(slots, a, b, 10 * MB)
    emb = slots[1].model.embed([a, b])
    assert result.by_model["fine-tuned"][0] == pytest.approx(float(emb[0] @ emb[1]), abs=1e-5)
    texts = compare.compare_texts(slots, "a", "b")
    assert texts.by_model["fine-tuned"] is None and texts.by_model["base"] is not None


def test_the_header_promises_a_difference_only_for_a_pair_that_gets_one(text_slots, mixed_slots, tiny_text_model,
                                                                         tiny_image_encoder):
    highlighted = "with the difference (fine-tuned − base) highlighted when it is 0.05 or more"
    assert highlighted in app.header(text_slots)
    assert highlighted in app.header(mixed_slots) and "only text inputs are scored by both" in app.header(mixed_slots)
    one = app.header(text_slots[:1])
    assert "highlighted" not in one and "only one model is loaded" in one
    cfg = app.DemoConfig(model=tiny_image_encoder, compare_to=tiny_text_model)
    pair, _ = app.load_slots(cfg)  # a text model and an image model: no input is scored by both
    for result in (compare.compare_texts(pair, "a", "b"), compare.compare_images(pair, *app.EXAMPLE_IMAGES[:2], MB)):
        assert 'data-model="delta"' not in render.scores_table(result, pair)
    head = app.header(pair)
    assert "highlighted" not in head and "no difference is shown" in head
    assert "the base model embeds text only and the fine-tuned model image only" in head
    assert "difference column shows" not in app.how_to_read(pair) and "no difference column" in app.how_to_read(pair)
    values = [str(c["props"].get("value")) for c in app.build_demo(cfg).get_config_file()["components"]]
    assert head in values  # the page's header is this text


def test_large_uploads_are_shown_reduced_and_embedded_from_the_full_decode(mixed_slots, tiny_image_encoder,
                                                                          tmp_path):
    from contrastkit.plugins.images import to_rgb
    from PIL import Image

    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)).resize((3000, 2000))
    photo.save(tmp_path / "photo.jpg", quality=90)
    photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "other.png", compress_level=1)
    paths = [str(tmp_path / "photo.jpg"), str(tmp_path / "other.png")]
    slots = [core.load_slot("base", tiny_image_encoder), mixed_slots[1]]  # both embed images
    result = compare.compare_images(slots, *paths, 100 * MB)
    assert [im.size for im in result.images] == [(512, 341), (512, 341)]  # what the page shows
    full = []
    for p in paths:  # the full decode the models got before: every pixel, as a viewer shows it
        with Image.open(p) as im:
            im.load()
            full.append(to_rgb(im))
    for shown, image in zip(result.images, full):  # the same picture, only smaller
        assert np.abs(np.asarray(shown, int) - np.asarray(image.resize(shown.size), int)).mean() < 4
    emb = slots[0].model.embed(full)
    assert result.by_model["base"] == pytest.approx([float(emb[0] @ emb[1])], abs=1e-6)
    emb = slots[1].model.encode(full, normalize_embeddings=True)
    assert result.by_model["fine-tuned"] == pytest.approx([float(emb[0] @ emb[1])], abs=1e-6)


def test_an_image_over_pillows_warning_limit_warns_no_one_from_a_worker_thread(mixed_slots, tmp_path, monkeypatch):
    """Gradio runs handlers in worker threads; Pillow's limit is lowered so that small files cross it."""
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # Pillow warns over 2,000 px and refuses over 4,000
    Image.new("RGB", (60, 50), "red").save(tmp_path / "large.png")
    Image.new("L", (80, 60)).save(tmp_path / "huge.png")
    Image.new("RGB", (40, 40), "blue").save(tmp_path / "small.png")
    a = str(tmp_path / "small.png")
    with warnings.catch_warnings(record=True) as caught, ThreadPoolExecutor(1) as pool:
        warnings.simplefilter("always")
        result = pool.submit(compare.compare_images, mixed_slots, a, str(tmp_path / "large.png"), MB).result()
        with pytest.raises(core.DemoInputError, match=r"^image B \(huge.png\) has more than 0.004 megapixels, more "
                                                      r"than Pillow decodes safely; upload a smaller image.$"):
            pool.submit(compare.compare_images, mixed_slots, a, str(tmp_path / "huge.png"), MB).result()
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert result.by_model["fine-tuned"] is not None and result.images[1].size == (60, 50)


def test_uploads_are_decoded_as_a_viewer_shows_them(tmp_path):
    from PIL import Image

    save_rotated_jpeg(tmp_path / "phone.jpg")  # shown red on top, blue at the bottom
    px = np.asarray(inputs.open_image(tmp_path / "phone.jpg", "x", MB)).astype(int)
    assert px.shape == (20, 10, 3)
    assert px[2, 5, 0] > 200 and px[17, 5, 2] > 200  # red on top, blue below
    Image.fromarray(np.array([[0, 65535]], dtype=np.uint16)).save(tmp_path / "g16.png")
    assert np.asarray(inputs.open_image(tmp_path / "g16.png", "x", MB))[0, :, 0].tolist() == [0, 255]


def test_precision_bf16_scores_stay_within_a_few_thousandths_of_fp32(tiny_text_model):
    fp32, _ = app.load_slots(app.DemoConfig(compare_to=tiny_text_model, model=tiny_text_model, precision="fp32"))
    bf16, status = app.load_slots(app.DemoConfig(compare_to=tiny_text_model, model=tiny_text_model, precision="bf16"))
    assert "bf16 autocast" in status and all(s.bf16 for s in bf16) and not any(s.bf16 for s in fp32)
    texts = ["how do I cook pasta", "boil the noodles in salted water", "my train was late"]
    exact, rounded = core.embed_texts(fp32[0], texts), core.embed_texts(bf16[0], texts)
    assert exact.dtype == rounded.dtype == np.float32
    gap = np.abs(exact @ exact.T - rounded @ rounded.T).max()
    assert 0 < gap < 0.01  # autocast really ran, and it moves cosines by less than the highlight threshold's fifth
    with pytest.raises(UserError, match="precision='fp16'"):
        app.DemoConfig(precision="fp16").validate()


def test_lines_of_only_invisible_characters_are_empty():
    assert inputs.split_lines("\u200b\u200b\n  a text \n\ufeff\n\u200bb\u200d") == ["a text", "b"]


def test_image_uploads_are_not_read_when_no_model_embeds_images(text_slots, tmp_path):
    """With text models only, an image tab says so before it decodes (or chokes on) any upload."""
    broken = tmp_path / "photo.png"
    broken.write_text("not an image at all")
    with pytest.raises(core.DemoInputError, match="embeds images"):
        compare.compare_images(text_slots, str(broken), str(broken), 10 * MB)
    with pytest.raises(core.DemoInputError, match="embeds both texts and images"):
        compare.compare_text_image(text_slots, str(broken), "a red circle", 10 * MB)
    with pytest.raises(core.DemoInputError, match="embeds images"):
        compare.similarity_matrix(text_slots, "", [str(broken), str(broken)], 10 * MB)
    with pytest.raises(core.DemoInputError, match="at least two items"):
        compare.similarity_matrix(text_slots, "", [str(broken)], 10 * MB)


def test_long_corpus_documents_are_capped_and_counted_in_one_note(text_slots, tmp_path):
    long = " ".join(f"word{i}" for i in range(100))  # more than the tiny model's 64 tokens
    huge = "x " * 600_000  # a megabyte line: only core.MAX_CHARS characters of it are tokenised
    path = tmp_path / "docs.txt"
    path.write_text(f"boil the pasta\n\nfirst {long}\n{huge}\nreset the router\nsecond {long}\nthird {long}\n")
    docs, _ = corpus.read_corpus(str(path), 10 * MB)
    assert len(docs) == 6 and max(map(len, docs)) == core.MAX_CHARS
    hits = corpus.search(text_slots, "boil the pasta", str(path), 3, 10 * MB)
    cut = [n for n in hits.notes if "characters" in n]
    assert cut == [(f"1 document is longer than {core.MAX_CHARS:,} characters, so only the first "
                   f"{core.MAX_CHARS:,} of it are used (line 4).")], hits.notes
    for role in ("base", "fine-tuned"):
        long_notes = [n for n in hits.notes if f"the {role} model reads" in n]
        assert long_notes == [(f"4 documents are longer than the {role} model reads (64 tokens), so only their "
                              f"beginning counts (first at lines 3 and 4).")], hits.notes
    assert "only their beginning counts" in render.hits_table(hits, text_slots)


def test_two_image_models_get_one_clear_note_and_disabled_text_buttons(tiny_image_encoder):
    """The text tabs say once, before any click, that image models embed no text (as the image tabs do for text
    models), and their buttons are off."""
    demo = app.build_demo(app.DemoConfig(model=tiny_image_encoder, compare_to=tiny_image_encoder))
    components = demo.get_config_file()["components"]
    buttons = {c["props"].get("value"): c["props"].get("interactive") for c in components if c["type"] == "button"}
    assert buttons["Compare texts"] is False and buttons["Search"] is False
    assert buttons["Compare images"] is not False
    notes = [str(c["props"].get("value")) for c in components if c["type"] == "markdown"
             and "needs a model that embeds texts" in str(c["props"].get("value"))]
    assert len(notes) == 2 and all("embed image only" in n for n in notes), notes
    # the matrix offers images only (no text box of texts neither model reads), and Enter runs no text tab
    boxes = {c["props"].get("label"): c["props"].get("visible", True) for c in components if c["type"] == "textbox"}
    assert boxes["Texts (one per line)"] is False
    from tests.demo.test_demo_feedback import _triggers

    assert _triggers(demo, "compare_texts") == {("Compare texts", "click")}
    assert _triggers(demo, "search") == {("Search", "click")}
    fn = next(f for f in demo.fns.values() if f.api_name == "matrix").fn
    assert "Upload two or more images: the loaded models embed images only" in fn("", None)[1]
    assert demo.title == f"{Path(tiny_image_encoder).name} · contrastkit demo"
