"""Class names that the plot fonts cannot draw (a folder named 猫): no glyph warnings, and the card keeps the names."""

from __future__ import annotations

import warnings

import numpy as np


def _embeddings() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(20, 8))


def test_the_pca_plot_of_a_cjk_class_name_draws_without_a_glyph_warning(tmp_path):
    from contrastkit.plugins.vision.card import plot_pca

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "Glyph ... missing from font(s)" becomes an error
        plot_pca(_embeddings(), [0, 1] * 10, ["猫", "dog"], tmp_path / "pca.png")
    assert (tmp_path / "pca.png").stat().st_size > 0


def test_a_name_that_only_another_installed_font_has_is_drawn_with_that_font(tmp_path):
    """Ⓐ is missing from matplotlib's default DejaVu Sans and present in its bundled STIX fonts."""
    from contrastkit.plugins import report
    from contrastkit.plugins.vision.card import plot_pca
    from matplotlib.font_manager import FontProperties, findfont, get_font

    names = ["Ⓐ", "dog"]
    assert ord("Ⓐ") not in get_font(findfont(FontProperties())).get_charmap()
    font = report.label_font(names)
    assert font is not None and {ord(c) for c in "Ⓐdog"} <= set(get_font(font.get_file()).get_charmap())
    assert report.label_font(["dog"]).get_file() is None  # drawable names keep the default font
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_pca(_embeddings(), [0, 1] * 10, names, tmp_path / "pca.png")


def test_an_image_run_on_a_cjk_class_folder_warns_no_glyph_and_its_card_names_the_class(tmp_path):
    from contrastkit.plugins import report
    from contrastkit.recipes import image

    from tests.recipes.test_recipe_image import FAST, _folder

    data = _folder(tmp_path / "images")
    (data / "class0").rename(data / "猫")
    (data / "class1").rename(data / "dog")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = image.run(data=str(data), output_dir=str(tmp_path / "out"), **FAST)
    assert not [w for w in caught if "Glyph" in str(w.message)]
    card = (result.output_dir / "README.md").read_text(encoding="utf-8")
    assert "猫" in card and (result.output_dir / "embeddings_pca.png").is_file()
    # the before/after table says what it measured, on how many images, and is metrics.json's
    metrics = result.metrics
    assert (f"of the {metrics['eval_images']} held-out labelled images, with their "
            f"neighbours among the {metrics['train_images']} training images") in card and metrics["eval_images"]
    assert '"before" is the starting backbone, "after" this model.' in card
    assert metrics["precision"] in ("32-true", "bf16-mixed") and f", precision {metrics['precision']}" in card
    knn = metrics["before_after"]["knn_top1"]
    assert ("| metric | before training | after training | change |\n|---|---|---|---|\n"
            f"| knn_top1 | {knn['before']:.4f} | {knn['after']:.4f} | {knn['delta']:+.4f} |\n") in card
    if report.label_font(["猫"]) is None:  # no installed font has it: the plot shows numbers, the card says whose
        assert "0: dog, 1: 猫" in card
    else:
        assert "1: 猫" not in card
