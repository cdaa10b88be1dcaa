"""Image-text pairs: images decoded as a viewer shows them, captions that tell nothing apart."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
from PIL import Image

from tests.conftest import save_rotated_jpeg


def _pairs(tmp_path, images, captions):
    from contrastkit.plugins.data import with_row_numbers
    from contrastkit.plugins.st.clip_data import image_text_pairs

    ds = with_row_numbers(datasets.Dataset.from_dict({"image": images, "text": captions}))
    return image_text_pairs(ds, base_dir=tmp_path)


def test_16_bit_and_exif_rotated_images_reach_training_as_a_viewer_shows_them(tmp_path):
    Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16)).save(tmp_path / "white16.png")
    save_rotated_jpeg(tmp_path / "rotated.jpg")
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "plain.png")
    pairs, _ = _pairs(tmp_path, ["white16.png", "rotated.jpg", "plain.png"], ["white", "red over blue", "dark"])
    white, rotated, plain = pairs["image"]
    assert white.mode == "RGB" and np.asarray(white).min() == 255  # not saturated garbage
    assert rotated.size == (10, 20) and np.asarray(rotated)[2, 5, 0] > 200
    assert np.asarray(plain)[0, 0].tolist() == [1, 2, 3]
    assert pairs.column_names == ["image", "text"]


def test_captions_that_are_all_the_same_fail_and_repeated_rows_warn(tmp_path):
    from contrastkit.plugins.errors import UserError

    for i in range(3):
        Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(tmp_path / f"{i}.png")
    with pytest.raises(UserError, match="every caption is 'a photo'"):
        _pairs(tmp_path, ["0.png", "1.png", "2.png"], ["a photo", "a photo", "a photo "])
    _, stats = _pairs(tmp_path, ["0.png", "1.png", "0.png"], ["a", "b", "a"])
    assert any("1 row(s) repeat an earlier (image, caption) row (first: row 3, same as row 1)" in n
               for n in stats.notes())


def test_a_list_of_captions_in_a_row_is_told_to_take_a_row_each(tmp_path):
    from contrastkit.plugins.errors import UserError

    for i in range(2):
        Image.new("RGB", (8, 8), (90 * i, 0, 0)).save(tmp_path / f"{i}.png")
    with pytest.raises(UserError, match=r"row 1 is list \(\['a', 'b'\]\), not text; give each caption a row of its "
                                        r"own, with the same image$"):
        _pairs(tmp_path, ["0.png", "1.png"], [["a", "b"], ["c"]])


def _coco_style(tmp_path, images=12, captions=3):
    """A CSV where every image has several captions, as in COCO."""
    rows = ["image,caption"]
    for i in range(images):
        Image.new("RGB", (8, 8), (20 * i, 255 - 20 * i, 7 * i)).save(tmp_path / f"img{i}.png")
        rows += [f"img{i}.png,picture {i} told the {c}. way" for c in range(captions)]
    (tmp_path / "captions.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "captions.csv"


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_one_images_captions_stay_on_one_side_of_the_held_out_split(tmp_path, seed):
    from contrastkit.plugins.config import resolve
    from contrastkit.plugins.st.clip_data import image_keys, load_pairs
    from contrastkit.recipes import image_text

    csv = _coco_style(tmp_path, images=30)
    train, held_out, _ = load_pairs(resolve(image_text.Config, data=str(csv), seed=seed), "unused")
    assert len(held_out) >= 9 and len(held_out) % 3 == 0  # 10% of 90 rows, whole images
    assert not set(image_keys(train)) & set(image_keys(held_out))
    assert len(train) + len(held_out) == 90


def test_an_image_with_several_captions_is_one_query_relevant_to_all_of_them(tmp_path):
    from contrastkit.plugins.config import resolve
    from contrastkit.plugins.st.clip import make_evaluator
    from contrastkit.plugins.st.clip_data import image_keys, load_pairs
    from contrastkit.recipes import image_text

    csv = _coco_style(tmp_path, images=4)
    pairs, _, _ = load_pairs(resolve(image_text.Config, data=str(csv), eval_data=str(csv)), "unused")
    assert len(set(image_keys(pairs))) == 4
    image_to_text, text_to_image = make_evaluator(pairs).evaluators
    assert len(image_to_text.queries) == 4 and len(text_to_image.corpus) == 4  # 4 images, not 12 rows
    assert sorted(len(r) for r in image_to_text.relevant_docs.values()) == [3, 3, 3, 3]
    assert all(len(r) == 1 for r in text_to_image.relevant_docs.values())
    # each image query is the image its relevant captions were written for (the rows are grouped by image)
    images = dict(zip(image_to_text.queries_ids, image_to_text.queries))
    captions = dict(zip(text_to_image.queries_ids, text_to_image.queries))
    row_of = {text: row for row, text in enumerate(pairs["text"])}
    for iid, cids in image_to_text.relevant_docs.items():
        for cid in cids:
            assert np.array_equal(np.asarray(images[iid]), np.asarray(pairs[row_of[captions[cid]]]["image"])), iid


def test_a_held_out_split_has_two_images_or_more(tmp_path):
    """One held-out image makes every text->image query find it: recall 1.0 whatever the model."""
    from contrastkit.plugins.config import resolve
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.st.clip_data import image_keys, load_pairs
    from contrastkit.recipes import image_text

    csv = _coco_style(tmp_path, images=12)  # 10% of 36 rows is one image's 3 captions
    train, held_out, _ = load_pairs(resolve(image_text.Config, data=str(csv)), "unused")
    assert len(set(image_keys(held_out))) == 2 and len(held_out) == 6 and len(train) == 30
    assert not set(image_keys(train)) & set(image_keys(held_out))
    one = tmp_path / "one.csv"
    one.write_text("image,caption\n" + "".join(f"img0.png,picture 0 in words {i}\n" for i in range(3)))
    with pytest.raises(UserError, match=r"^eval_data holds 1 image \(3 row\(s\)\); .* 2 or more different images"):
        load_pairs(resolve(image_text.Config, data=str(csv), eval_data=str(one)), "unused")
