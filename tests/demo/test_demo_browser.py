"""The demo end to end in real headless Chromium (Debian's ``chromium`` driven by Playwright).

The app runs in this process on 127.0.0.1 (a free port) with two tiny random CLIP models, which embed
texts and images, so every tab has real numbers from both models.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from contrastkit.demo import app

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000  # the CPU is shared with other jobs; a first encode can take a while

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"{CHROMIUM} is missing: apt-get install chromium "
                                                                f"(make test does it)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    """The running demo's URL: base = tiny CLIP seed 0, fine-tuned = tiny CLIP seed 1."""
    from contrastkit.plugins.st.clip import build_tiny_clip

    root = tmp_path_factory.mktemp("browser-models")
    base, tuned = build_tiny_clip(root / "base", seed=0), build_tiny_clip(root / "tuned", seed=1)
    cfg = app.DemoConfig(model=str(tuned), compare_to=str(base), port=_free_port(), max_upload_mb=1)
    demo = app.launch(cfg, block=False)
    yield f"http://127.0.0.1:{cfg.port}/"
    demo.close()


@pytest.fixture(scope="module")
def page(page_url):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(page_url)
        yield page
        browser.close()


def _score(page, result_id: str, model: str) -> float:
    cell = page.locator(f'#{result_id} td[data-model="{model}"]').first
    cell.wait_for()
    return float(cell.inner_text().split()[0])  # "0.8123" or, with a place in the model's order, "0.8123 #1"


def test_compare_two_texts_shows_both_models_scores(page, tmp_path):
    page.get_by_label("Text A").fill("how do I cook pasta")
    page.get_by_label("Texts to compare with A (one per line)").fill("boil the noodles in salted water")
    page.get_by_role("button", name="Compare texts").click()
    page.locator("#ck-text-result td", has_text="boil the noodles").wait_for()
    base, tuned = _score(page, "ck-text-result", "base"), _score(page, "ck-text-result", "fine-tuned")
    delta = float(page.locator('#ck-text-result td[data-model="delta"]').first.inner_text())
    assert -1 <= base <= 1 and -1 <= tuned <= 1 and delta == pytest.approx(tuned - base, abs=2e-4)
    assert page.locator("#ck-text-result tbody tr").count() == 1
    page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
    assert (tmp_path / "demo.png").stat().st_size > 10_000


def test_enter_in_text_a_compares_and_a_phone_reaches_every_column(page):
    """Enter in Text A compares; on a 390 px wide screen the table scrolls sideways, so its last column (the
    difference) can be reached instead of being cut off at the page's edge. The tab's title names both models."""
    page.wait_for_function("document.title.endsWith('contrastkit demo')")  # set once the app has loaded
    assert page.title() == "tuned vs base · contrastkit demo"
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.get_by_role("tab", name="Text ↔ text").click()
        page.get_by_label("Text A").fill("where is the train station")
        page.get_by_label("Texts to compare with A (one per line)").fill("the station is two streets north")
        page.get_by_label("Text A").press("Enter")
        delta = page.locator('#ck-text-result td[data-model="delta"]').first
        page.locator("#ck-text-result td", has_text="the station is two streets north").wait_for()
        page.locator("#ck-text-result table").scroll_into_view_if_needed()  # up and down only: its left edge shows
        table = page.locator("#ck-text-result table").bounding_box()
        assert table["width"] > 390  # wider than the screen: the test is only worth something then
        page.mouse.move(table["x"] + 50, table["y"] + 20)
        page.mouse.wheel(table["width"], 0)  # swipe sideways, as a thumb does; Gradio's clipping box never scrolls
        page.wait_for_timeout(300)
        box = delta.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box  # the difference came into view
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})


def test_empty_text_is_a_message_in_the_page(page):
    page.get_by_role("tab", name="Text ↔ text").click()
    page.get_by_label("Text A").fill("")
    page.get_by_role("button", name="Compare texts").click()
    page.locator("#ck-text-result .ck-message", has_text="Type a text").wait_for()
    assert page.locator(".toast-body").count() == 0  # no error popup


def _upload(page, elem_id: str, path: str | Path) -> None:
    box = page.locator(f"#{elem_id}")
    if box.get_by_role("button", name="Clear").count():
        box.get_by_role("button", name="Clear").click()  # replace the preloaded example
    box.locator("input[type=file]").set_input_files(str(path))
    box.get_by_text(Path(path).stem).first.wait_for()


def test_upload_two_images_and_read_the_result(page, tmp_path):
    page.get_by_role("tab", name="Image ↔ image").click()
    _upload(page, "ck-image-a", app.EXAMPLE_IMAGES[0])
    _upload(page, "ck-image-b", app.EXAMPLE_IMAGES[2])
    page.get_by_role("button", name="Compare images").click()
    base, tuned = _score(page, "ck-image-result", "base"), _score(page, "ck-image-result", "fine-tuned")
    assert -1 <= base <= 1 and -1 <= tuned <= 1
    assert page.locator("#ck-image-result img.ck-thumb").count() == 2

    # several images B: one row each, with each model's order
    box = page.locator("#ck-image-b")
    box.get_by_role("button", name="Clear").click()
    box.locator("input[type=file]").set_input_files([app.EXAMPLE_IMAGES[1], app.EXAMPLE_IMAGES[2]])
    box.get_by_text(Path(app.EXAMPLE_IMAGES[2]).stem).first.wait_for()
    page.get_by_role("button", name="Compare images").click()
    page.locator("#ck-image-result td", has_text=Path(app.EXAMPLE_IMAGES[2]).name).wait_for()
    assert page.locator("#ck-image-result tbody tr").count() == 2
    assert sorted(page.locator('#ck-image-result td[data-model="base"] .ck-order').all_inner_texts()) == ["#1", "#2"]

    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("plain text pretending to be a picture")
    _upload(page, "ck-image-b", not_an_image)
    page.get_by_role("button", name="Compare images").click()
    page.locator("#ck-image-result .ck-message", has_text="is not an image").wait_for()


def test_search_the_bundled_corpus_and_read_the_top_hit(page, tmp_path):
    from contrastkit.demo import corpus

    docs, _ = corpus.read_corpus(None, 2**20)
    page.get_by_role("tab", name="Search").click()
    page.get_by_label("Query").fill(docs[3][:60])
    page.get_by_label("Query").press("Enter")  # Enter searches, as the button does
    top = page.locator('#ck-search-result td[data-model="fine-tuned"][data-rank="1"]')
    top.wait_for()
    score = float(top.locator(".ck-score").inner_text())
    assert top.locator(".ck-doc").inner_text().strip() in docs and -1 <= score <= 1
    assert page.locator('#ck-search-result td[data-model="base"][data-rank="5"] .ck-doc').count() == 1
    assert page.locator('#ck-search-result td[data-model="fine-tuned"] .ck-move').count() == 5  # how far it moved
    page.screenshot(path=str(tmp_path / "search.png"), full_page=True)


def test_an_oversized_corpus_is_a_message_in_the_page_and_no_search(page, tmp_path):
    big = tmp_path / "big_corpus.txt"
    big.write_text("a document about pasta\n" * 70_000)  # 1.6 MB; the app allows 1 MB (max_upload_mb=1)
    page.get_by_role("tab", name="Search").click()
    _upload(page, "ck-corpus", big)
    page.get_by_role("button", name="Search").click()
    page.locator("#ck-search-result .ck-message", has_text="big_corpus.txt is larger than 1 MB").wait_for()
    assert page.locator("#ck-search-result table").count() == 0  # nothing searched, not the bundled corpus either
    assert page.locator(".toast-body").count() == 0  # no error popup


def test_embedding_an_uploaded_corpus_shows_progress(page, tmp_path):
    docs = tmp_path / "many_docs.txt"
    docs.write_text("".join(f"Document {i}: notes about topic {i % 37} and item {i * 7 % 101}.\n" for i in range(5000)))
    page.get_by_role("tab", name="Search").click()
    _upload(page, "ck-corpus", docs)
    page.get_by_role("button", name="Search").click()
    page.get_by_text("embedding the corpus").first.wait_for()  # gr.Progress, per model, with the document count
    assert "/5000 documents" in page.get_by_text("embedding the corpus").first.inner_text()
    page.locator('#ck-search-result td[data-model="fine-tuned"][data-rank="1"]').wait_for()
    assert "Searching 5000 documents from many_docs.txt" in page.locator("#ck-search-result").inner_text()
