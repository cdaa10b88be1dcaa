"""Config values: what the command line, a YAML file and a Config object give must mean what the user typed."""

from __future__ import annotations

import pytest
from contrastkit.plugins.config import resolve
from contrastkit.plugins.errors import UserError
from contrastkit.plugins.values import parse_overrides


def _text(*items: str, **python):
    from contrastkit.recipes import text

    return resolve(text.Config, **parse_overrides(list(items)), **python)


def test_command_line_numbers_keep_their_text_where_a_field_takes_text():
    cfg = _text("output_dir=0755", "subset=1.10", "split=12:30", "epochs=2", "learning_rate=1e-4", "seed=010",
                "matryoshka_dims=064,32", "max_seq_length=0128")
    assert (cfg.output_dir, cfg.subset, cfg.split) == ("0755", "1.10", "12:30")  # YAML alone: 493, 1.1, 750
    assert (cfg.epochs, cfg.learning_rate, cfg.seed) == (2.0, 1e-4, 10)  # decimal, not octal
    assert cfg.matryoshka_dims == [64, 32] and cfg.max_seq_length == 128


def test_a_key_given_twice_with_two_values_is_refused_and_the_same_value_twice_is_one():
    with pytest.raises(UserError, match=r"^epochs is given twice \(epochs=1, --epochs=2\); keep the one you mean$"):
        parse_overrides(["epochs=1", "data=a.csv", "--epochs=2"])
    assert parse_overrides(["epochs=2", "epochs=2", "output-dir=o", "output_dir=o"]) == {"epochs": "2",
                                                                                           "output_dir": "o"}


def test_one_and_zero_are_booleans_on_the_command_line_and_in_yaml(tmp_path):
    from contrastkit.recipes import text

    assert _text("freeze_embeddings=0").freeze_embeddings is False
    assert _text("length_batching=1").length_batching is True
    path = tmp_path / "run.yaml"
    path.write_text("freeze_embeddings: 0\nlength_batching: 1\n")
    cfg = resolve(text.Config, config=path)
    assert cfg.freeze_embeddings is False and cfg.length_batching is True


@pytest.mark.parametrize("item", ["learning_rate=.inf", "epochs=.nan", "epochs=1e400", "scale=.nan",
                                  "warmup_ratio=-.inf"])
def test_a_number_that_is_not_finite_is_refused(item):
    with pytest.raises(UserError, match=f"config field '{item.split('=')[0]}' expects a finite number"):
        _text(item)


@pytest.mark.parametrize("seed", ["-1", "4294967296", "99999999999999999999"])
def test_a_seed_outside_numpys_range_is_refused(seed):
    with pytest.raises(UserError, match="config field 'seed' must be an integer from 0 to 4,294,967,295"):
        _text(f"seed={seed}")
    assert _text("seed=4294967295").seed == 4294967295


def test_a_config_objects_own_values_are_checked_like_keyword_ones():
    from contrastkit.recipes import text

    cfg = resolve(text.Config, text.Config(overwrite="no", freeze_embeddings="false", epochs="2"))
    assert cfg.overwrite is False and cfg.freeze_embeddings is False and cfg.epochs == 2.0
    with pytest.raises(UserError, match="config field 'epochs' expects a number, got 'two'"):
        resolve(text.Config, text.Config(epochs="two"))
    with pytest.raises(UserError, match="config field 'learning_rate' expects a finite number"):
        resolve(text.Config, text.Config(learning_rate=float("nan")))


def test_an_unknown_key_in_a_config_file_names_the_file(tmp_path):
    from contrastkit.recipes import image

    path = tmp_path / "config.yaml"  # e.g. a text run's config.yaml given to the image recipe
    path.write_text("columns: {anchor: q}\nepochs: 1\n")
    with pytest.raises(UserError, match=f"config file '{path}': unknown config key 'columns'"):
        resolve(image.Config, config=path)


def test_an_unknown_key_names_the_recipe_to_show_and_no_far_fetched_key():
    from contrastkit.recipes import image_text, rerank

    with pytest.raises(UserError) as refused:  # a sparse key given to rerank
        resolve(rerank.Config, active_dims=8)
    assert str(refused.value) == ("unknown config key 'active_dims'. Run 'contrastkit show rerank' to list the valid "
                                  "keys.")
    with pytest.raises(UserError, match=r"'epoch'\. Did you mean 'epochs'\? Run 'contrastkit show image-text'"):
        resolve(image_text.Config, epoch=1)


@pytest.mark.parametrize("value", ["0", "-5"])
def test_the_text_recipes_max_seq_length_must_be_positive_as_reranks_and_sparses(value):
    with pytest.raises(UserError, match=f"config field 'max_seq_length' must be an integer > 0, got {value}"):
        _text(f"max_seq_length={value}")


TEXT_AS_TYPED = {"subset": "no", "split": "2024-01-01", "output_dir": "0755", "data": "2024", "eval_data": "on"}


def test_a_text_field_gets_a_boolean_or_date_word_as_typed_on_the_command_line_and_in_yaml(tmp_path):
    """YAML reads no/on as booleans, 2024-01-01 as a date and 0755 as octal 493: a field that takes text (a Hub
    subset "no" is Norwegian, data=2024 a folder) must get the word typed, in a file as on the command line."""
    from contrastkit.recipes import text

    path = tmp_path / "run.yaml"
    path.write_text("".join(f"{key}: {value}\n" for key, value in TEXT_AS_TYPED.items()) + "overwrite: yes\n")
    for cfg in (_text(*(f"{k}={v}" for k, v in TEXT_AS_TYPED.items()), "overwrite=yes"),
                resolve(text.Config, config=path)):
        assert {key: getattr(cfg, key) for key in TEXT_AS_TYPED} == TEXT_AS_TYPED
        assert all(type(getattr(cfg, key)) is str for key in TEXT_AS_TYPED)  # plain str: config.yaml can dump it
        assert cfg.overwrite is True  # a boolean field still reads yes as true
    path.write_text("seed: 010\nmatryoshka_dims: [064, 32]\nlearning_rate: 1e-4\n")
    cfg = resolve(text.Config, config=path)  # numbers in a file mean what they do on the command line
    assert (cfg.seed, cfg.matryoshka_dims, cfg.learning_rate) == (10, [64, 32], 1e-4)


@pytest.mark.parametrize(("item", "meant"), [("output_dir=#3 run", "#3 run"), ("split=&train", "&train"),
                                             ("subset=- en", "- en"), ("output_dir=|", "|"),
                                             ("subset='quoted'", "quoted"), ("output_dir=~", None),
                                             ("split=null", None)])
def test_yaml_syntax_that_means_nothing_on_one_line_is_text(item, meant):
    """YAML alone reads '#3 run' as a comment (null: the default output folder, silently), '&train' as an anchor
    (null) and '- en' as a list; on the command line each is the text typed. Quotes and null words keep YAML's
    meaning."""
    key = item.split("=")[0]
    assert getattr(_text(item), key) == meant


def test_eval_data_given_as_a_dataframe_beside_a_data_path_is_read_as_given():
    """A DataFrame is no Hub id: comparing it with data='pairs.csv' raised pandas' "truth value is ambiguous"."""
    import pandas as pd
    from contrastkit.recipes import text

    frame = pd.DataFrame({"anchor": ["a", "b"], "positive": ["c", "d"]})
    cfg = resolve(text.Config, data="pairs.csv", subset="faq", eval_data=frame)
    assert cfg.eval_source() is frame and cfg.eval_options() == (None, None)


def test_a_bundled_config_is_found_by_name_and_a_file_of_that_name_here_comes_first(tmp_path, monkeypatch):
    """The bundled files' comments run them as ``--config text_matryoshka.yaml`` from any folder."""
    from contrastkit.plugins.values import read_yaml

    monkeypatch.chdir(tmp_path)
    assert read_yaml("text_matryoshka.yaml")["matryoshka_dims"]
    (tmp_path / "text_matryoshka.yaml").write_text("seed: 7\n", encoding="utf-8")
    assert list(read_yaml("text_matryoshka.yaml")) == ["seed"]
    with pytest.raises(UserError, match=r"'text_matryoshk.yaml' does not exist.*bundled, found by name: .*"
                                        r"text_matryoshka.yaml"):
        read_yaml("text_matryoshk.yaml")
    with pytest.raises(UserError, match="does not exist"):
        read_yaml("sub/text.yaml")  # a path names a file, not a bundled one


@pytest.mark.parametrize("value", ["false", "False", "no"])
def test_push_to_hub_false_means_no_push(value):
    from contrastkit.recipes import text

    assert resolve(text.Config, push_to_hub=value).push_to_hub is None


def test_push_to_hub_true_asks_for_the_repo_id():
    from contrastkit.recipes import text

    with pytest.raises(UserError, match="push_to_hub=true names no repo: give the Hub repo id to push to, e.g. "
                                        "push_to_hub=your-name/my-model"):
        resolve(text.Config, push_to_hub="true")


def test_a_datasetdict_given_as_data_stays_a_datasetdict():
    """A DatasetDict is a dict: the YAML value cleanup must not rebuild it as a plain dict (each recipe then refused
    it, or read it as columns)."""
    from contrastkit.recipes import image
    from datasets import Dataset, DatasetDict

    given = DatasetDict(train=Dataset.from_dict({"image": ["a.png"]}))
    assert resolve(image.Config, data=given).data is given


def test_a_path_object_given_from_python_is_written_to_config_yaml_as_its_path(tmp_path, monkeypatch):
    """``data=Path("pairs.csv")`` was written ``data: <python PosixPath>``: ``--config`` could not repeat the run."""
    from pathlib import Path

    from contrastkit.plugins.config import dump_yaml
    from contrastkit.recipes import text

    monkeypatch.chdir(tmp_path)
    (tmp_path / "pairs.csv").write_text("anchor,positive\na,b\n")
    cfg = resolve(text.Config, data=Path("pairs.csv"), eval_data=Path("pairs.csv"), output_dir=Path("out"))
    assert isinstance(cfg.data, Path)  # kept: a Path is a local file to the loaders, never a Hub id
    dump_yaml(cfg, tmp_path / "config.yaml")
    again = resolve(text.Config, config=tmp_path / "config.yaml")
    assert again.data == again.eval_data == str(tmp_path / "pairs.csv") and again.output_dir == "out"


def test_config_yaml_of_a_run_given_python_rows_says_so_when_repeated(tmp_path):
    """It was looked for as a file, then on the Hub: "'<python DataFrame>' is not a file or folder here, nor ..."."""
    import pandas as pd
    from contrastkit.plugins.config import dump_yaml
    from contrastkit.recipes import text

    rows = pd.DataFrame({"anchor": ["a", "b"], "positive": ["c", "d"]})
    dump_yaml(resolve(text.Config, data="pairs.csv", eval_data=rows), tmp_path / "config.yaml")
    with pytest.raises(UserError, match=r"^eval_data=<python DataFrame> stands for the Python object that the run "
                                        r"this config comes from was given; .* give eval_data= a file, a folder or a "
                                        r"Hub id, or pass the object from Python again$"):
        resolve(text.Config, config=tmp_path / "config.yaml")
    assert resolve(text.Config, config=tmp_path / "config.yaml", eval_data=rows).eval_data is rows
