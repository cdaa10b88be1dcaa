"""Image data from Python objects and scikit-learn's digits, and the hold-out."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from tests.conftest import save_rotated_jpeg


def test_images_from_python_objects_are_rgb_and_1x1_images_are_skipped():
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.vision.data import ImageDataset, load_images, open_rgb

    palette = Image.new("P", (10, 10), 3)
    data = load_images([Image.new("L", (12, 9), 50), palette, Image.new("RGB", (1, 1))])
    assert len(data.items) == 2 and len(data.skipped) == 1 and data.labels is None
    assert all(open_rgb(x).mode == "RGB" for x in data.items)
    assert ImageDataset(data, lambda im: im.size)[0] == ((12, 9), -1)
    with pytest.raises(UserError, match="item 0' is 1x1 px, too small"):
        load_images([Image.new("RGB", (1, 1))], strict=True)


def test_default_data_is_sklearn_digits_with_labels():
    from contrastkit.plugins.vision.data import load_images
    from contrastkit.plugins.vision.splits import holdout

    data = load_images(None)
    assert len(data.items) == 1797 and data.items[0].size == (8, 8) and set(data.labels) == set(range(10))
    train, held = holdout(data, seed=0)
    assert len(held.items) == 179 and len(train.items) == 1797 - 179


# --------------------------------------------------------------------------- decoded as a viewer shows them
def _decoded(tmp_path, im, name, **save):
    from contrastkit.plugins.vision.data import open_rgb

    path = tmp_path / name
    im.save(path, **save)
    out = open_rgb(path)
    assert out.mode == "RGB"
    return out, np.asarray(out).astype(int)


def test_16_bit_32_bit_and_float_gray_images_are_scaled_by_their_bit_depth(tmp_path):
    gray16 = Image.fromarray(np.array([[0, 1000, 32768, 65535]], dtype=np.uint16))
    assert gray16.mode == "I;16"
    _, px = _decoded(tmp_path, gray16, "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")  # what a 16-bit PNG opens as
    assert px[0, :, 0].tolist() == [0, 4, 128, 255] and (px[..., 0] == px[..., 2]).all()

    from contrastkit.plugins.images import to_rgb

    as_int = np.asarray(to_rgb(Image.fromarray(np.array([[0, 65535]], dtype=np.int32), "I")))
    assert as_int[0, :, 0].tolist() == [0, 255]
    wide = np.asarray(to_rgb(Image.fromarray(np.array([[-10, 0, 10]], dtype=np.int32), "I")))
    assert wide[0, :, 0].tolist() == [0, 128, 255]  # outside 16 bits: its own range
    floats = np.asarray(to_rgb(Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")))
    assert floats[0, :, 0].tolist() == [0, 128, 255]


def test_exif_orientation_is_applied(tmp_path):
    from contrastkit.plugins.vision.data import open_rgb

    out = open_rgb(save_rotated_jpeg(tmp_path / "rotated.jpg"))  # shown red on top, blue at the bottom
    assert out.mode == "RGB"
    px = np.asarray(out).astype(int)
    assert out.size == (10, 20)
    assert px[2, 5, 0] > 200 and px[2, 5, 2] < 60  # top: red
    assert px[17, 5, 2] > 200 and px[17, 5, 0] < 60  # bottom: blue


def test_transparency_palette_cmyk_and_1_bit_images_look_as_in_a_viewer(tmp_path):
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.info["transparency"] = 0
    _, px = _decoded(tmp_path, palette, "p.png", transparency=0)
    assert (px == 255).all()  # transparent black over white, not black

    _, px = _decoded(tmp_path, Image.new("LA", (8, 8), (0, 0)), "la.png")
    assert (px == 255).all()
    _, px = _decoded(tmp_path, Image.new("RGBA", (8, 8), (255, 0, 0, 128)), "rgba.png")
    assert px[0, 0].tolist() == [255, 127, 127]
    _, px = _decoded(tmp_path, Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "cmyk.jpg", quality=95)
    assert px[4, 4, 0] > 230 and px[4, 4, 1] < 30 and px[4, 4, 2] < 30  # red
    _, px = _decoded(tmp_path, Image.new("1", (8, 8), 1), "bit.png")
    assert (px == 255).all()


# --------------------------------------------------------------------------- large images, decoded shrunk
def _photo(w, h, seed=0):
    """A smooth picture with some detail: what a resize to a few dozen pixels keeps."""
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    rng = np.random.default_rng(seed)
    a = np.stack([np.sin(6 * x + 2 * y), np.cos(5 * y - 3 * x), np.sin(4 * x * y + 1)], -1) * 100 + 128
    return np.clip(a + rng.normal(0, 8, a.shape), 0, 255).astype(np.uint8)


def _squashed(im, side=32):
    return np.asarray(im.resize((side, side), Image.BILINEAR)).astype(int)


@pytest.mark.parametrize("name,mode", [("photo.jpg", "RGB"), ("drawing.png", "RGBA"), ("palette.png", "P"),
                                       ("deep.png", "I;16")])
def test_large_images_are_decoded_shrunk_to_min_side_and_look_the_same(tmp_path, name, mode):
    from contrastkit.plugins.vision.data import open_rgb

    px = _photo(900, 600)
    if mode == "RGBA":  # a drawing on a transparent sheet: the left third see-through
        im = Image.fromarray(np.dstack([px, np.where(np.arange(900) < 300, 0, 255)[None, :].repeat(600, 0)])
                             .astype(np.uint8), "RGBA")
    elif mode == "P":
        im = Image.fromarray(px).quantize(64)
        im.info["transparency"] = 0
    elif mode == "I;16":
        im = Image.fromarray(px[..., 0].astype(np.uint16) * 257)
    else:
        im = Image.fromarray(px)
    save = {"quality": 95} if name.endswith(".jpg") else {"transparency": 0} if mode == "P" else {}
    im.save(tmp_path / name, **save)
    full, small = open_rgb(tmp_path / name), open_rgb(tmp_path / name, min_side=64)
    assert full.size == (900, 600) and small.mode == "RGB"
    assert 64 <= min(small.size) < 2 * 64 and small.size[0] / small.size[1] == pytest.approx(1.5, rel=0.05)
    diff = np.abs(_squashed(full) - _squashed(small))
    assert diff.mean() < 3 and np.percentile(diff, 99) < 20  # the same picture at the size the model sees
    if mode == "RGBA":
        assert (_squashed(small)[:, :8] == 255).all()  # see-through parts stay white, as a viewer shows them
    # a smaller image than twice min_side is decoded as it is
    assert np.array_equal(np.asarray(open_rgb(tmp_path / name, min_side=400)), np.asarray(full))


def test_an_image_over_pillows_pixel_limit_is_named_as_too_large_not_unreadable(tmp_path, monkeypatch):
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.vision.data import load_images

    for cls in ("a", "b"):
        _png(tmp_path / cls / "ok.png")
    Image.new("RGB", (100, 60), "white").save(tmp_path / "a" / "poster.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # Pillow refuses twice this: 6,000 px is over
    data = load_images(str(tmp_path))
    assert len(data.items) == 2
    assert data.messages() == ["skipped 1 unreadable or too-small image(s): a/poster.png (over 0.004 megapixels)"]
    with pytest.raises(UserError, match="image 'a/poster.png' has more pixels than Pillow decodes .*shrink it"):
        load_images(str(tmp_path), strict=True)


def test_an_image_under_twice_the_pixel_limit_is_kept_with_one_note_and_no_pillow_warning(tmp_path, monkeypatch):
    import warnings

    from contrastkit.plugins.vision.data import ImageDataset, load_images
    from contrastkit.plugins.vision.encoder import make_preprocess

    for cls in ("a", "b"):
        _png(tmp_path / cls / "ok.png")
    Image.new("RGB", (60, 50), "white").save(tmp_path / "a" / "poster.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # 3,000 px: over the limit, under twice it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_images(str(tmp_path))
        embed = make_preprocess(16, {"mean": [0.5] * 3, "std": [0.5] * 3})
        for i in range(len(data.items)):  # training views and the kNN / encoder path
            ImageDataset(data, lambda im: im.size)[i]
            embed(data.items[i])
    assert len(data.items) == 3
    assert data.messages() == ["1 image(s) over 0.002 megapixels, kept (they are slow to decode): a/poster.png"]
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    with pytest.warns(Image.DecompressionBombWarning):  # the filter was only for the load and the views
        Image.open(tmp_path / "a" / "poster.png").close()


def test_images_are_checked_a_few_at_a_time_in_their_own_order(tmp_path):
    from contrastkit.plugins.vision import data as vdata

    for i in range(12):
        path = tmp_path / f"c{i % 2}" / f"{i:02d}.png"
        if i in (3, 8):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"not an image")
        else:
            _png(path)
    data = vdata.load_images(str(tmp_path))
    assert data.skipped == ["c0/08.png", "c1/03.png"]  # every broken file named, in the folder's order
    assert [p.name for p in data.items] == [f"{i:02d}.png" for i in (0, 2, 4, 6, 10, 1, 5, 7, 9, 11)]
    assert data.labels == [0] * 5 + [1] * 5


def test_shrunk_decoding_keeps_the_exif_rotation_and_reaches_the_encoder(tmp_path):
    from contrastkit.plugins.vision.data import ImageData, ImageDataset, decode_side, open_rgb
    from contrastkit.plugins.vision.encoder import make_preprocess

    save_rotated_jpeg(tmp_path / "phone.jpg", 1200)  # shown red on top, blue at the bottom
    small = open_rgb(tmp_path / "phone.jpg", min_side=decode_side(16))
    assert small.size[0] < small.size[1] and min(small.size) < 2 * decode_side(16)  # portrait, shrunk
    px = np.asarray(small).astype(int)
    assert px[5, 5, 0] > 200 and px[-5, 5, 2] > 200  # red on top, blue at the bottom

    seen = ImageDataset(ImageData([tmp_path / "phone.jpg"]), lambda x: x.size, decode_side(16))[0][0]
    assert seen == small.size
    norm = {"mean": [0.5] * 3, "std": [0.25] * 3}
    full = make_preprocess(16, norm)(open_rgb(tmp_path / "phone.jpg"))  # a decoded PIL image is shrunk too
    assert (make_preprocess(16, norm)(tmp_path / "phone.jpg") - full).abs().mean() < 0.05


# --------------------------------------------------------------------------- folders
def _png(path, color=(10, 200, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), color).save(path)


def test_symlinked_class_folders_and_files_are_followed_and_loops_end(tmp_path):
    from contrastkit.plugins.vision.data import load_images

    for i in range(2):
        _png(tmp_path / "elsewhere" / "dogs" / f"d{i}.png")
    _png(tmp_path / "elsewhere" / "lone.png", (200, 0, 0))
    root = tmp_path / "photos"
    _png(root / "cats" / "c0.png")
    (root / "dogs").symlink_to(tmp_path / "elsewhere" / "dogs", target_is_directory=True)
    (root / "cats" / "c1.png").symlink_to(tmp_path / "elsewhere" / "lone.png")
    (root / "cats" / "loop").symlink_to(root, target_is_directory=True)  # a loop back to the top
    (root / "birds").symlink_to(tmp_path / "moved-away", target_is_directory=True)
    (root / "puppies").symlink_to(tmp_path / "elsewhere" / "dogs", target_is_directory=True)  # dogs, once more
    data = load_images(str(root))
    assert data.label_names == ["cats", "dogs"]
    assert data.messages() == [("left out 2 folder link(s) to a folder already read (each folder is read once): "
                               "cats/loop, puppies"), "skipped 1 symbolic link(s) that point to nothing: birds"]
    assert sorted(p.name for p in data.items) == ["c0.png", "c1.png", "d0.png", "d1.png"]


def test_contrastkit_output_folders_inside_the_data_are_left_out_and_said(tmp_path):
    from contrastkit.plugins.vision.data import load_images

    root = tmp_path / "photos"
    for cls in ("a", "b"):
        _png(root / cls / "x.png")
    out = root / "outputs" / "image-20260101"
    _png(out / "loss.png")
    (out / "config.yaml").write_text("recipe: image\n")
    _png(root / "running" / "pca.png")
    (root / "running" / "checkpoints").mkdir()
    data = load_images(str(root))
    assert len(data.items) == 2 and data.label_names == ["a", "b"]
    line = next(m for m in data.messages() if "output folder" in m)
    assert "2 contrastkit output folder(s)" in line and "outputs/image-20260101" in line and "running" in line


def test_skipped_files_are_named_and_ignored_formats_counted(tmp_path):
    from contrastkit.plugins.vision.data import load_images

    root = tmp_path / "photos"
    for i in range(3):
        _png(root / f"ok{i}.png")
    for i in range(5):
        (root / f"broken{i}.jpg").write_bytes(b"not a jpeg")
    (root / "a.heic").write_bytes(b"x")
    (root / "b.heic").write_bytes(b"x")
    (root / "notes.txt").write_text("x")
    (root / "logo.svg").write_text("<svg/>")
    data = load_images(str(root))
    skipped, ignored = data.messages()
    assert skipped.startswith("skipped 5 unreadable") and "broken0.jpg, broken1.jpg, broken2.jpg and 2 more" in skipped
    assert ignored == "ignored 4 file(s) that are not .jpg/.jpeg/.png/.webp/.bmp/.tif/.tiff images: .heic (2), " \
                      ".svg (1), .txt (1)"


def test_a_single_class_folder_or_loose_images_warn_that_knn_is_skipped(tmp_path):
    from contrastkit.plugins.vision.data import load_images

    one = tmp_path / "one"
    for i in range(3):
        _png(one / "cats" / f"{i}.png")
    data = load_images(str(one))
    assert data.labels is None and any("one class folder 'cats'" in m for m in data.messages())
    _png(one / "loose.png")
    _png(one / "dogs" / "d.png")
    data = load_images(str(one))
    assert data.labels is None and any("1 image(s) sit directly" in m for m in data.messages())


def test_the_top_level_subfolder_is_the_label_and_nested_folders_are_named(tmp_path):
    from contrastkit.plugins.vision.data import load_images

    for path in ("cats/0.png", "cats/closeups/1.png", "cats/closeups/far/2.png", "dogs/3.png"):
        _png(tmp_path / path)
    data = load_images(str(tmp_path))
    assert data.label_names == ["cats", "dogs"] and data.labels == [0, 0, 0, 1]
    assert ("images in 2 nested folder(s) take their top-level folder's label: cats/closeups -> cats, "
            "cats/closeups/far -> cats") in data.messages()


def test_eval_labels_are_matched_to_the_training_classes_by_name(tmp_path):
    from contrastkit.plugins.vision.data import load_images
    from contrastkit.plugins.vision.splits import match_eval_labels

    for cls in ("ants", "bees", "cats"):
        _png(tmp_path / "train" / cls / "0.png")
    for cls in ("bees", "cats", "zebras"):  # on its own, eval_data would number bees 0 and cats 1
        for i in range(2):
            _png(tmp_path / "held" / cls / f"{i}.png")
    train = load_images(str(tmp_path / "train"))
    held = match_eval_labels(train, load_images(str(tmp_path / "held")))
    assert [(p.parent.name, y) for p, y in zip(held.items, held.labels)] == [("bees", 1)] * 2 + [("cats", 2)] * 2
    assert held.label_names == ["ants", "bees", "cats"]
    assert train.notes[-1] == "warning: 2 eval_data image(s) of 1 class(es) that data lacks are left out of kNN: zebras"
    # a single class folder is still labelled, by its name
    one = match_eval_labels(train, load_images(str(tmp_path / "held" / "cats" / "..")).subset([2, 3]))
    assert one.labels == [2, 2]


def test_eval_images_that_are_training_images_are_warned(tmp_path):
    from contrastkit.plugins.vision.data import load_images
    from contrastkit.plugins.vision.splits import check_eval_images

    for cls in ("a", "b"):
        for i in range(2):
            _png(tmp_path / "photos" / cls / f"{i}.png")
    _png(tmp_path / "held" / "a" / "new.png")
    (tmp_path / "held" / "b").mkdir()
    (tmp_path / "held" / "b" / "copy.png").symlink_to(tmp_path / "photos" / "b" / "0.png")
    (tmp_path / "held" / "b" / "broken.png").write_bytes(b"")
    train = load_images(str(tmp_path / "photos"))
    check_eval_images(train, load_images(str(tmp_path / "held")))
    assert any(m.startswith("warning: 1 of 2 eval_data images are also training images") for m in train.notes)
    assert "eval_data: skipped 1 unreadable or too-small image(s): b/broken.png" in train.notes
    check_eval_images(train, load_images(str(tmp_path / "photos")))
    assert "warning: every eval_data image is also a training image" in train.notes[-1]


# --------------------------------------------------------------------------- the held-out split, class by class
def _imbalanced(root, counts):
    for cls, n in counts.items():
        for i in range(n):
            _png(root / cls / f"{i}.png", (i % 250, 20, 40))
    return str(root)


def test_the_held_out_split_keeps_every_class_in_training_for_every_seed(tmp_path):
    from contrastkit.plugins.vision.data import load_images
    from contrastkit.plugins.vision.splits import holdout

    data = load_images(_imbalanced(tmp_path, {"circle": 100, "square": 100, "triangle": 1}))
    for seed in range(12):  # a plain shuffle held the only triangle out for seeds 3 and 8
        train, held = holdout(data, seed)
        assert sorted(set(train.labels)) == [0, 1, 2] and 2 not in held.labels
        assert len(held.items) == (19 if seed in (3, 8) else 20)  # the triangle drawn went back to training
        assert train.items == sorted(train.items) and held.items == sorted(held.items)  # the data's own order
    assert data.notes.count("1 class(es) have no held-out image, so kNN does not score them (they are trained "
                            "on): triangle") == 1


def test_held_out_images_all_of_one_class_are_warned():
    """200 "ok" and 3 "defect" images: the 20 held out are most often all "ok", and a kNN top-1 of 1.0 before and
    after then says nothing about telling the classes apart; the run says so (eval_data= too)."""
    from contrastkit.plugins.vision.data import ImageData
    from contrastkit.plugins.vision.splits import holdout, match_eval_labels

    data = ImageData(list(range(203)), [0] * 200 + [1] * 3, ["ok", "defect"])
    held = holdout(data, 0)[1]
    assert set(held.labels) == {0} and data.notes[-1] == (
        "warning: all 20 held-out images are of class 'ok', so kNN top-1 only measures how many land nearest it, "
        "not whether the classes are told apart; give eval_data= with images of each class")
    balanced = ImageData(list(range(200)), [0, 1] * 100, ["ok", "defect"])
    holdout(balanced, 0)
    assert not any("held-out images are of class" in m for m in balanced.notes)
    match_eval_labels(balanced, ImageData(list(range(4)), [0] * 4, ["defect"]))
    assert balanced.notes[-1].startswith("warning: all 4 held-out images are of class 'defect'")
    assert balanced.notes[-1].endswith("; add images of the other classes to eval_data")


def test_the_split_is_a_plain_draw_unless_a_class_would_leave_training_and_is_the_same_for_a_seed():
    from collections import Counter

    from contrastkit.plugins.vision.data import ImageData
    from contrastkit.plugins.vision.splits import split_off

    data = ImageData(list(range(1000)), [0] * 600 + [1] * 300 + [2] * 97 + [3] * 3, ["a", "b", "c", "d"])
    rest, drawn = split_off(data, 100, "wise_ft 0")  # set_aside's seed (wise_ft=auto)
    plain = list(range(1000))
    random.Random("wise_ft 0").shuffle(plain)
    assert drawn.items == sorted(plain[:100])  # every class keeps images: the published splits stay as they were
    assert len(rest.items) == 900 and set(rest.items) | set(drawn.items) == set(range(1000))
    assert split_off(data, 100, "wise_ft 0")[1].items == drawn.items
    assert split_off(data, 100, "wise_ft 1")[1].items != drawn.items
    # a class the draw would take whole keeps one image, so fewer are drawn than asked
    pairs = ImageData(list(range(6)), [0, 0, 1, 1, 2, 3], ["a", "b", "c", "d"])
    rest, drawn = split_off(pairs, 5, 0)
    assert len(drawn.items) < 5 and sorted(set(rest.labels)) == [0, 1, 2, 3]
    assert Counter(rest.labels) + Counter(drawn.labels) == Counter(pairs.labels)
    # unlabelled images: a plain random draw of n
    plain = ImageData(list(range(50)))
    rest, drawn = split_off(plain, 5, 0)
    assert len(drawn.items) == 5 and rest.items == sorted(set(range(50)) - set(drawn.items))


# --------------------------------------------------------------------------- datasets.Dataset labels
def _hf(labels, feature=None):
    import datasets

    features = {"image": datasets.Image()}
    if feature is not None:
        features["label"] = feature
    return datasets.Dataset.from_dict({"image": [Image.new("RGB", (8, 8), (20 * i, 0, 0)) for i in range(len(labels))],
                                       "label": labels}, features=datasets.Features(features) if feature else None)


def test_classlabel_minus_one_is_no_label():
    import datasets
    from contrastkit.plugins.vision.data import load_images

    shapes = datasets.ClassLabel(names=["circle", "square"])
    data = load_images(_hf([-1] * 4, shapes))  # a Hub test split without labels
    assert data.labels is None and data.label_names is None
    assert data.notes == ["label column 'label' gives no row a label (-1 or empty): the images are unlabelled"]
    data = load_images(_hf([0, 1, -1, 1], shapes))  # as loose images beside class subfolders: unlabelled, warned
    assert data.labels is None and data.label_names is None
    assert any(m.startswith("warning: 1 of 4 rows have no label in column 'label'") for m in data.messages())
    assert load_images(_hf([0, 1, 0, 1], shapes)).labels == [0, 1, 0, 1]


def test_a_none_label_is_no_label_and_a_list_label_is_refused():
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.vision.data import load_images

    data = load_images(_hf(["cat", None, "dog", "cat"]))
    assert data.labels is None and data.label_names is None  # not a class named "None"
    assert any("1 of 4 rows have no label" in m for m in data.messages())
    assert load_images(_hf(["cat", "dog", "dog"])).label_names == ["cat", "dog"]
    with pytest.raises(UserError, match="label column 'label' holds lists of labels .multi-label."):
        load_images(_hf([[0], [1], [0, 1]]))


@pytest.mark.parametrize("empty", ["", "  ", float("nan")])
def test_a_blank_or_nan_label_is_no_label_not_a_class(empty):
    """A CSV's empty cell arrives as "" (string column) or NaN (number column, through pandas): as the docs say of
    an empty label, the row has none, so no class named "" or "nan" is trained on."""
    from contrastkit.plugins.vision.data import load_images

    labels = ["cat", empty, "dog", "cat"] if isinstance(empty, str) else [1.0, empty, 2.0, 1.0]
    data = load_images(_hf(labels))
    assert data.labels is None and data.label_names is None
    assert any("1 of 4 rows have no label" in m for m in data.messages())
    # spaces around a name (a CSV's "img.png, cat") do not make a second class
    assert load_images(_hf(["cat", " dog", "dog ", "cat"])).label_names == ["cat", "dog"]



def test_a_classlabel_column_of_another_name_is_read_and_an_unread_column_is_named():
    """cifar100's coarse_label, a "category" ClassLabel: labels by their type. A plain "class" column is not
    guessed at, but the run names it, and method=auto's reason tells a dataset's fix, not a folder's."""
    import datasets
    from contrastkit.plugins.vision.data import load_images
    from contrastkit.plugins.vision.methods import choose_method

    images = [Image.new("RGB", (8, 8), (40 * i, 0, 0)) for i in range(4)]
    kinds = datasets.ClassLabel(names=["fish", "trees"])
    data = load_images(datasets.Dataset.from_dict(
        {"image": images, "coarse_label": [0, 1, 1, 0]},
        features=datasets.Features({"image": datasets.Image(), "coarse_label": kinds})))
    assert data.labels == [0, 1, 1, 0] and data.label_names == ["fish", "trees"]
    data = load_images(datasets.Dataset.from_dict({"image": images, "class": ["cat", "dog", "dog", "cat"]}))
    assert data.labels is None and data.notes == [
        ("no label column (label, labels, fine_label, or one ClassLabel column) among the columns class: the images "
         "are unlabelled; to train on a column of classes, name it 'label' (Dataset.rename_column)")]
    reason = choose_method("auto", data.labels, data.label_names, data.source)[1]
    assert "a datasets.Dataset have no labels (a dataset or table needs a label column for every row)" in reason


def test_integer_labels_that_are_not_a_classlabel_keep_their_numeric_order():
    from contrastkit.plugins.vision.data import load_images

    data = load_images(_hf([10, 2, 2, 10, 1]))  # an int64 column, as a CSV or pandas frame gives it
    assert data.label_names == ["1", "2", "10"] and data.labels == [2, 1, 1, 2, 0]

def test_eval_images_of_a_class_named_but_absent_from_training_are_left_out():
    """A Hub ClassLabel names every class, also those a training slice lacks: kNN cannot predict a class with no
    training image, so its eval images would count as wrong; they are left out and named, as for a folder."""
    import datasets
    from contrastkit.plugins.vision.data import load_images
    from contrastkit.plugins.vision.splits import match_eval_labels

    shapes = datasets.ClassLabel(names=["circle", "square", "star"])
    train = load_images(_hf([0, 1, 0, 1], shapes))  # no star among the training rows
    held = match_eval_labels(train, load_images(_hf([0, 2, 1, 2, 2], shapes), what="eval_data"))
    assert held.labels == [0, 1] and held.label_names == ["circle", "square", "star"]
    assert train.notes[-1] == "warning: 3 eval_data image(s) of 1 class(es) that data lacks are left out of kNN: star"


def test_a_csv_or_parquet_table_of_image_paths_with_labels_is_read(tmp_path):
    """A table of paths (relative to the file, as image-text reads them) and labels, as Kaggle-style data comes:
    integer labels in numeric order, a missing file skipped and named, an empty label cell meaning no label."""
    import pandas as pd
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.vision.data import load_images
    from contrastkit.plugins.vision.splits import check_eval_images

    for i in range(4):
        _png(tmp_path / "imgs" / f"{i}.png")
    (tmp_path / "labels.csv").write_text("image,label\nimgs/0.png,10\nimgs/1.png,2\nimgs/2.png,10\n"
                                          "imgs/3.png,2\nimgs/gone.png,2\n")
    data = load_images(str(tmp_path / "labels.csv"))
    assert data.label_names == ["2", "10"] and data.labels == [1, 0, 1, 0]
    assert data.items[0] == str(tmp_path / "imgs" / "0.png") and data.skipped == ["row 5 (gone.png)"]
    assert data.source == "table file 'labels.csv'"
    check_eval_images(data, load_images(str(tmp_path / "labels.csv"), what="eval_data"))  # its paths are files
    assert data.notes[-1].startswith("warning: every eval_data image is also a training image")
    pd.DataFrame({"file_name": [f"imgs/{i}.png" for i in range(4)], "label": ["cat", "dog", "", "cat"]}).to_parquet(
        tmp_path / "t.parquet")
    assert load_images(str(tmp_path / "t.parquet")).labels is None  # one empty cell: unlabelled, warned
    (tmp_path / "cols.csv").write_text("picture,label\nimgs/0.png,1\n")
    with pytest.raises(UserError, match=r"has no column of image paths \(columns: picture, label\); name it 'image'"):
        load_images(str(tmp_path / "cols.csv"), what="eval_data")
    with pytest.raises(UserError, match="is a file; point data= at a folder of images, or at a .csv/"):
        load_images(str(tmp_path / "imgs" / "0.png"))


# --------------------------------------------------------------------------- split folders
def test_a_folder_of_split_folders_with_class_subfolders_is_refused(tmp_path):
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.vision.data import load_images

    for split in ("train", "val"):
        for cls in ("circle", "square"):
            _png(tmp_path / "split" / split / cls / "0.png")
    fix = f"data={tmp_path / 'split' / 'train'} eval_data={tmp_path / 'split' / 'val'}"
    with pytest.raises(UserError, match="holds split folders .train, val. with class subfolders") as err:
        load_images(str(tmp_path / "split"))
    assert str(err.value).endswith(fix)
    with pytest.raises(UserError, match=f"eval_data={tmp_path / 'split' / 'val'}$"):
        load_images(str(tmp_path / "split"), what="eval_data")
    for cls in ("circle", "square"):
        _png(tmp_path / "one" / "Training" / cls / "0.png")
    with pytest.raises(UserError, match=f"data={tmp_path / 'one' / 'Training'}$"):
        load_images(str(tmp_path / "one"))


def test_class_folders_named_like_splits_with_images_directly_inside_are_classes(tmp_path):
    from contrastkit.plugins.vision.data import load_images

    for cls in ("train", "test"):
        for i in range(2):
            _png(tmp_path / cls / f"{i}.png")
    data = load_images(str(tmp_path))
    assert data.label_names == ["test", "train"] and data.labels == [0, 0, 1, 1]
    # ... but they may be the splits of unlabelled images: one warning says what was done and the other reading
    assert data.messages() == [(f"warning: data folder '{tmp_path}' holds only folders named like splits (test, "
                                f"train) with the images directly in them, read as classes of those names; if they "
                                f"are splits of unlabelled images, point at them: data={tmp_path / 'train'} "
                                f"eval_data={tmp_path / 'test'} (or method=simclr to train without their names as "
                                f"labels)")]
    assert load_images(str(tmp_path), what="eval_data").messages()[0].endswith(
        f"point at them: eval_data={tmp_path / 'test'} (or method=simclr to train without their names as labels)")
    _png(tmp_path / "cats" / "0.png")  # a class not named like a split: plain classes, nothing to say
    assert load_images(str(tmp_path)).messages() == []


def test_threads_opening_large_images_leave_the_warning_filters_as_they_were(tmp_path, monkeypatch):
    """The demo's workers open images at once; each open turns Pillow's size warning off for a moment. Unlocked,
    their catch_warnings blocks interleaved and left the filter installed for the rest of the process."""
    import threading
    import warnings

    from contrastkit.plugins.images import open_rgb

    Image.new("RGB", (64, 64), (10, 20, 30)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # 64 x 64 is over the warning's limit, under the error's
    before = list(warnings.filters)

    def open_many():
        for _ in range(300):
            open_rgb(tmp_path / "big.png")

    threads = [threading.Thread(target=open_many) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert warnings.filters == before


# --------------------------------------------------------------------------- datasets.Image columns, undecoded
def _png_bytes(color, size=(8, 8)):
    import io

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def _image_rows(values, labels):
    """A Dataset whose Image column holds ``values`` ({"bytes", "path"} or None), as Parquet from the Hub gives it."""
    import datasets

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["red", "blue"])})
    return datasets.Dataset.from_dict({"image": values, "label": labels}, features=features)


def test_a_broken_or_empty_image_in_a_datasets_image_column_is_skipped_and_named_or_refused_under_strict():
    from contrastkit.plugins.errors import UserError
    from contrastkit.plugins.vision.data import ImageDataset, load_images

    red, blue = _png_bytes((250, 0, 0)), _png_bytes((0, 0, 250))
    ds = _image_rows([{"bytes": red, "path": "r0.png"}, {"bytes": b"not a png", "path": "broken.png"},
                      {"bytes": blue, "path": "b0.png"}, None, {"bytes": red, "path": "r1.png"},
                      {"bytes": blue, "path": "b1.png"}], [0, 0, 1, 1, 0, 1])
    data = load_images(ds)
    assert data.skipped == ["row 2 (broken.png)", "row 4"]
    assert data.labels == [0, 1, 0, 1] and data.label_names == ["red", "blue"]
    seen = [ImageDataset(data, lambda im: im.getpixel((4, 4)))[i] for i in range(4)]
    assert seen == [((250, 0, 0), 0), ((0, 0, 250), 1), ((250, 0, 0), 0), ((0, 0, 250), 1)]
    with pytest.raises(UserError, match=r"image 'row 2 \(broken.png\)' cannot be read"):
        load_images(ds, strict=True)


def test_an_undecoded_image_column_is_read_like_a_decoded_one(tmp_path):
    import datasets
    from contrastkit.plugins.images import decoded_sizes, open_rgb
    from contrastkit.plugins.vision.data import load_images, save_examples

    _png(tmp_path / "on-disk.png", (0, 250, 0))
    ds = _image_rows([{"bytes": _png_bytes((250, 0, 0), (12, 6)), "path": None},
                      {"bytes": None, "path": str(tmp_path / "on-disk.png")},
                      {"bytes": _png_bytes((0, 0, 250)), "path": None}], [0, 1, 1])
    undecoded = ds.cast_column("image", datasets.Image(decode=False))
    assert decoded_sizes(undecoded["image"][:2]) == [(12, 6), (8, 8)]
    assert open_rgb(undecoded["image"][1]).getpixel((0, 0)) == (0, 250, 0)
    data = load_images(undecoded)
    assert len(data.items) == 3 and not data.skipped and data.labels == [0, 1, 1]
    written = save_examples(data, tmp_path / "examples")
    assert [Image.open(p).getpixel((0, 0)) for p in written] == [(250, 0, 0), (0, 250, 0), (0, 0, 250)]


def test_examples_of_classes_whose_names_clean_alike_keep_apart_and_pair_by_class(tmp_path):
    from contrastkit.demo.image_runs import example_sets
    from contrastkit.plugins.vision.data import ImageData, save_examples

    colours = {0: (250, 0, 0), 1: (0, 250, 0), 2: (0, 0, 250)}
    held = ImageData([Image.new("RGB", (8, 8), colours[y]) for y in (0, 1, 2, 0, 1, 2)], [0, 1, 2, 0, 1, 2],
                     ["C#", "C++", "Java"])
    written = save_examples(held, tmp_path)
    names = ["C(0)-0.png", "C(0)-1.png", "C(1)-0.png", "C(1)-1.png", "Java-0.png", "Java-1.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    assert len(set(written)) == 6
    sets = example_sets(sorted(map(str, written)))  # what the demo reads back: A and its class-mate first
    assert len(sets) == 3
    for a, (mate, *others) in sets:
        colour = Image.open(a).getpixel((0, 0))
        assert Image.open(mate).getpixel((0, 0)) == colour
        assert all(Image.open(o).getpixel((0, 0)) != colour for o in others)


# --------------------------------------------------------------------------- datasets read row by row
def _image_size(im):
    return im.size


def _saved_rows(tmp_path, n, broken=6):
    """A Dataset of ``n`` noisy 24 px PNGs in two classes, row ``broken`` (from 0) unreadable, saved to disk and
    loaded back memory-mapped, as a Hub dataset is: (the dataset, its undecoded image values as a list)."""
    import io

    import datasets

    rng = np.random.default_rng(0)
    values = []
    for i in range(n):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (24, 24 + i, 3), dtype=np.uint8)).save(buffer, format="PNG")
        values.append({"bytes": b"not a png" if i == broken else buffer.getvalue(), "path": f"{i}.png"})
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    datasets.Dataset.from_dict({"image": values, "label": [i % 2 for i in range(n)]},
                               features=features).save_to_disk(str(tmp_path / "saved"))
    ds = datasets.load_from_disk(str(tmp_path / "saved"))
    return ds, list(ds.cast_column("image", datasets.Image(decode=False))["image"])


def test_a_saved_dataset_is_read_row_by_row_with_the_same_images_labels_and_splits(tmp_path, monkeypatch):
    """The images stay in the memory-mapped table (nothing holds every image's bytes): the items, skipped rows,
    labels and every split are those of the dataset's values copied out into a list, as they were before."""
    from contrastkit.plugins.vision import data as vision_data
    from contrastkit.plugins.vision.data import ImageData, load_images
    from contrastkit.plugins.vision.rows import RowImages
    from contrastkit.plugins.vision.splits import holdout, match_eval_labels, split_off

    monkeypatch.setattr(vision_data, "CHECK_CHUNK", 5)  # several chunks; the broken row is in the second
    ds, values = _saved_rows(tmp_path, n=30)
    data = load_images(ds)
    expected = values[:6] + values[7:]
    assert isinstance(data.items, RowImages)
    assert list(data.items) == expected and [data.items[i] for i in range(29)] == expected
    assert list(data.items[3:8]) == expected[3:8] and data.items[-1] == expected[-1]
    assert data.skipped == ["row 7 (6.png)"] and data.labels == [i % 2 for i in range(30) if i != 6]
    listed = ImageData(expected, data.labels, data.label_names)  # the same images, copied out
    for (lazy, copied) in [(holdout(data, 0), holdout(listed, 0)), (split_off(data, 4, 1), split_off(listed, 4, 1))]:
        for part, same in zip(lazy, copied):
            assert isinstance(part.items, RowImages)
            assert (list(part.items), part.labels) == (same.items, same.labels)
    train, held = split_off(data, 4, 1)
    matched = match_eval_labels(train, held)
    assert isinstance(matched.items, RowImages) and list(matched.items) == list(held.items)
    assert list(data.spaced(3).items) == listed.spaced(3).items


def test_a_dataloader_worker_gets_the_dataset_by_reference_not_its_images(tmp_path):
    import pickle

    from contrastkit.plugins.vision.data import ImageDataset, load_images

    ds, values = _saved_rows(tmp_path, n=40, broken=-1)
    data = load_images(ds)
    image_bytes = sum(len(v["bytes"]) for v in values)
    dumped = pickle.dumps(ImageDataset(data.subset(list(range(1, 40, 2))), _image_size))
    assert len(dumped) < image_bytes / 10  # ~2 kB of table references and row numbers against ~70 kB of PNGs
    assert [pickle.loads(dumped)[i] for i in range(3)] == [((24 + i, 24), i % 2) for i in (1, 3, 5)]


def test_an_encoder_embeds_a_datasets_rows_as_it_embeds_them_copied_out(tmp_path):
    from contrastkit.plugins.vision.backbones import create_backbone
    from contrastkit.plugins.vision.data import load_images
    from contrastkit.plugins.vision.encoder import ImageEncoder, make_preprocess

    ds, values = _saved_rows(tmp_path, n=5, broken=-1)
    net, spec = create_backbone("tiny-cnn")
    encoder = ImageEncoder(net.eval(), make_preprocess(16, spec["normalize"]), spec)
    rows = load_images(ds).items
    assert np.array_equal(encoder.embed(rows, batch_size=2), encoder.embed(values, batch_size=2))
    assert encoder.embed(rows).shape[0] == 5
