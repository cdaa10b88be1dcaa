"""Image-text pairs from a Hub-style image column: one key per image for the repeat warning and the split."""

from __future__ import annotations

import io

import datasets
from PIL import Image


def _png(color) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_hub_images_that_share_a_path_are_told_apart_by_their_bytes():
    """Hub image columns give every image the same ``path`` (``image.png``): repeats and the held-out split go by
    the bytes, one key for both, so different images with one caption are no repeat and one image is one group."""
    from contrastkit.plugins.data import with_row_numbers
    from contrastkit.plugins.st.clip_data import image_keys, image_text_pairs

    colours = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0), (0, 200, 200), (200, 0, 200)]
    images = [{"bytes": _png(c), "path": "image.png"} for c in colours]
    images.append({"bytes": _png(colours[0]), "path": "copy.png"})  # row 1's image again, under another name
    captions = ["a red square", "a photo", "a blue square", "a photo", "a cyan square", "a photo", "a red square"]
    features = datasets.Features({"image": datasets.Image(), "text": datasets.Value("string")})
    ds = with_row_numbers(datasets.Dataset.from_dict({"image": images, "text": captions}, features=features))
    pairs, stats = image_text_pairs(ds)
    assert [n for n in stats.notes() if "repeat" in n] == [
        ("warning: 1 row(s) repeat an earlier (image, caption) row (first: row 7, same as row 1); repeated rows weigh "
         "more in training and can land in both the training and held-out split")]
    keys = image_keys(pairs)
    assert len(set(keys)) == 6 and keys[6] == keys[0]


def _folder(tmp_path, n=6):
    """``n`` small PNGs of different colours in tmp_path/pics, and a captions.csv naming them relative to tmp_path."""
    (tmp_path / "pics").mkdir()
    for i in range(n):
        Image.new("RGB", (8, 8), (40 * i, 255 - 40 * i, 9 * i)).save(tmp_path / "pics" / f"{i}.png")
    return _csv(tmp_path, "captions.csv", [(f"pics/{i}.png", f"picture {i}") for i in range(n)])


def _csv(tmp_path, name, rows, header="image,caption"):
    path = tmp_path / name
    path.write_text(header + "\n" + "".join(f"{a},{b}\n" for a, b in rows))
    return path


def _load(**config):
    from contrastkit.plugins.config import resolve
    from contrastkit.plugins.st.clip_data import load_pairs
    from contrastkit.recipes import image_text

    return load_pairs(resolve(image_text.Config, **config), "unused")


def test_an_unreadable_image_is_named_with_why(tmp_path):
    """A missing file, a folder and a file that holds no image need different fixes: the line says which."""
    import pytest
    from contrastkit.plugins.errors import UserError

    data = _folder(tmp_path, n=3)
    (tmp_path / "pics" / "notes.txt").write_text("not an image")
    (tmp_path / "pics" / "sub").mkdir()
    said = {"pics/notes.txt": "is not an image file that Pillow can read;",
            "pics/sub": "is a folder, not an image file;",
            "pics/gone.png": f"does not exist (looked for {tmp_path / 'pics' / 'gone.png'});"}
    for bad, why in said.items():
        with pytest.raises(UserError) as err:
            _load(data=str(_csv(tmp_path, "bad.csv", [("pics/0.png", "zero"), (bad, "bad"), ("pics/1.png", "one")])))
        assert str(err.value) == (f"image '{bad}' {why} 1 of 3 image(s) in all are missing or unreadable: fix the "
                                  f"paths in column 'image', or pass skip_missing=true")
    with pytest.raises(UserError) as err:  # skipping every row would leave nothing: no skip_missing advice
        _load(data=str(_csv(tmp_path, "none.csv", [("gone/0.png", "zero"), ("gone/1.png", "one")])))
    assert str(err.value).endswith("2 of 2 image(s) in all are missing or unreadable: fix the paths in column 'image'")
    assert _load(data=str(data))[2].rows == 3


def test_a_csv_written_with_spaces_after_its_commas_is_read(tmp_path):
    _folder(tmp_path, n=3)
    spaced = _csv(tmp_path, "spaced.csv", [(f"picture {i}", f" pics/{i}.png") for i in range(3)], "caption, image")
    pairs, _, stats = _load(data=str(spaced))
    assert len(pairs) == 3 and stats.image_column == " image" and pairs["text"][0] == "picture 0"


def test_eval_data_that_shares_training_images_warns_and_its_skipped_rows_say_whose(tmp_path):
    """eval_data rows showing a training image score fit, not new images; a skipped eval_data row is named as
    eval_data's, since its line numbers are not the training file's."""
    data = _folder(tmp_path)
    copy = _csv(tmp_path, "copy.csv", [(f"pics/{i}.png", f"picture {i} again") for i in range(3)])
    notes = _load(data=str(data), eval_data=str(copy))[2].notes()
    assert notes == [("warning: every image of eval_data is also a training image; the after-training scores show "
                     "how well training images are fitted, not how the model does on new ones")]

    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "pics" / "new.png")
    Image.new("RGB", (8, 8), (3, 2, 1)).save(tmp_path / "pics" / "new2.png")
    some = _csv(tmp_path, "some.csv", [("pics/new.png", "new"), ("pics/gone.png", "gone"), ("pics/new2.png", "n2"),
                                       ("pics/4.png", "four")])
    stats = _load(data=str(data), eval_data=str(some), skip_missing=True)[2]
    assert stats.notes() == [
        ("warning: 1 of 3 rows of eval_data show a training image (first: line 5); the after-training scores are "
        "optimistic"),
        "eval_data: skipped 1 row(s) whose image file is missing or unreadable: pics/gone.png"]
    assert stats.skipped() == {"skipped_missing_images": 1, "skipped_empty_captions": 0}
