"""Length-grouped, duplicate-free batch sampler: coverage, grouping, shuffled order, DDP sharding, trainer use."""

from __future__ import annotations

import random
import statistics

import pytest
from contrastkit.plugins.st.sampler import LengthGroupedNoDuplicatesBatchSampler as Sampler
from contrastkit.plugins.st.sampler import fill_batches
from datasets import Dataset
from sentence_transformers.base.sampler import NoDuplicatesBatchSampler


def _pairs(n: int = 400, seed: int = 0) -> Dataset:
    rng = random.Random(seed)
    rows = [(f"q{i} " + "w " * rng.randint(1, 60), f"a{i} " + "x " * rng.randint(1, 60)) for i in range(n)]
    return Dataset.from_dict({"anchor": [a for a, _ in rows], "positive": [p for _, p in rows]})


def _padded_cost(ds: Dataset, batches: list[list[int]]) -> int:
    lengths = [len(a) + len(p) for a, p in zip(ds["anchor"], ds["positive"])]
    return sum(max(lengths[i] for i in b) * len(b) for b in batches)


@pytest.mark.parametrize("drop_last", [False, True])
def test_every_row_once_and_length_matches(drop_last):
    ds = _pairs(403)
    sampler = Sampler(ds, batch_size=16, drop_last=drop_last, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == (403 // 16 if drop_last else -(-403 // 16))
    flat = [i for b in batches for i in b]
    assert len(flat) == len(set(flat))
    if not drop_last:
        assert sorted(flat) == list(range(403))
    assert all(len(b) == 16 for b in batches[:-1] if drop_last)


def _mined(n: int = 64) -> Dataset:
    """Rows as mining leaves them: each row's negative is the next row's positive, so neighbours clash."""
    a = [f"question {i} " + "x" * (i % 7) for i in range(n)]
    p = [f"answer {i} " + "y" * (i % 5) for i in range(n)]
    return Dataset.from_dict({"anchor": a, "positive": p, "negative": [p[(i + 1) % n] for i in range(n)]})


@pytest.mark.parametrize("n,batch_size", [(64, 16), (324, 16), (200, 32)])
def test_clashing_rows_wait_for_the_next_batch_instead_of_filling_tiny_ones(n, batch_size):
    # Cutting each length bucket on its own left clashing rows in extra batches of 1-4 rows, while len() counted
    # one batch per bucket: the Trainer stopped after len() steps and an epoch skipped a third of the rows.
    ds = _mined(n)
    for epoch in (0, 1):
        sampler = Sampler(ds, batch_size=batch_size, drop_last=False, seed=0)
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(sampler) == len(batches)
        assert sorted(i for b in batches for i in b) == list(range(n))  # every row, once
        assert sum(len(b) < batch_size for b in batches) <= 2, sorted(map(len, batches))
        for b in batches:
            texts = [t for i in b for t in ds[i].values()]
            assert len(texts) == len(set(texts))


def _fill_by_rebuilding(order, values, batch_size, drop_last):
    """The plain statement of the rule: each batch takes the first rows without a clash; the rest keep their order."""
    pending, batches = list(order), []
    while pending:
        batch, seen, waiting = [], set(), []
        for pos, i in enumerate(pending):
            if len(batch) < batch_size and values[i].isdisjoint(seen):
                batch.append(i)
                seen |= values[i]
            else:
                waiting.append(i)
        pending = waiting
        if len(batch) == batch_size or not drop_last:
            batches.append(batch)
    return batches


@pytest.mark.parametrize("drop_last", [False, True])
def test_linked_list_fill_keeps_the_rule(drop_last):
    # fill_batches unlinks batched rows instead of rebuilding the pending list after every batch (quadratic in
    # the rows); the batches must be the ones the plain rule gives, clashes and short batches included.
    rng = random.Random(4)
    for _ in range(30):
        n, texts = rng.randint(1, 120), rng.randint(2, 40)
        values = [{f"t{rng.randrange(texts)}", f"u{rng.randrange(texts)}"} for _ in range(n)]
        order = rng.sample(range(n), n)
        for batch_size in (1, 3, 8):
            want = _fill_by_rebuilding(order, values, batch_size, drop_last)
            assert fill_batches(order, values, batch_size, drop_last) == want


def test_one_trainer_epoch_trains_every_row(tiny_text_model, tmp_path):
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers import SentenceTransformerTrainingArguments as Args
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    ds = _mined(64)
    model = SentenceTransformer(tiny_text_model, device="cpu")
    args = Args(output_dir=str(tmp_path), num_train_epochs=1, per_device_train_batch_size=16, batch_sampler=Sampler,
                save_strategy="no", report_to=[], use_cpu=True)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=ds,
                                         loss=MultipleNegativesRankingLoss(model))
    batches = list(trainer.get_train_dataloader().batch_sampler)
    assert trainer.train().global_step == len(batches)  # the Trainer takes len() steps: all of them
    assert sorted(i for b in batches for i in b) == list(range(64))


def test_groups_by_length_and_pads_less_than_random_batches():
    ds = _pairs(640)
    grouped = list(Sampler(ds, batch_size=32, drop_last=False, seed=1))
    plain = list(NoDuplicatesBatchSampler(ds, batch_size=32, drop_last=False, seed=1))
    assert _padded_cost(ds, grouped) < 0.75 * _padded_cost(ds, plain)


def test_batch_order_is_shuffled_not_sorted_by_length():
    ds = _pairs(960)
    lengths = [len(a) + len(p) for a, p in zip(ds["anchor"], ds["positive"])]
    means = [statistics.mean(lengths[i] for i in b) for b in Sampler(ds, batch_size=16, drop_last=True, seed=0)]
    assert means != sorted(means) and means != sorted(means, reverse=True)
    assert abs(statistics.correlation(list(range(len(means))), means)) < 0.5


def test_no_duplicate_texts_inside_a_batch():
    # 60 distinct answers shared by 300 rows: plain batching would put repeats in one batch.
    rows = [(f"question {i}", f"answer {i % 60} " + "z " * (i % 60)) for i in range(300)]
    ds = Dataset.from_dict({"anchor": [a for a, _ in rows], "positive": [p for _, p in rows]})
    for batch in Sampler(ds, batch_size=16, drop_last=False, seed=5):
        texts = [ds[i]["positive"] for i in batch]
        assert len(texts) == len(set(texts))


def test_same_batches_on_every_rank_new_ones_each_epoch():
    ds = _pairs(300)
    a, b = Sampler(ds, 16, False, seed=7), Sampler(ds, 16, False, seed=7)
    assert list(a) == list(b)  # two ranks build the same list, so sharding splits it cleanly
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first


def test_accelerate_shards_batches_across_two_ranks_without_overlap():
    from accelerate.data_loader import BatchSamplerShard

    ds = _pairs(320)
    full = list(Sampler(ds, 16, True, seed=2))
    shards = [list(BatchSamplerShard(Sampler(ds, 16, True, seed=2), num_processes=2, process_index=r,
                                     split_batches=False, even_batches=False)) for r in (0, 1)]
    assert shards[0] + shards[1] != [] and sorted(shards[0] + shards[1]) == sorted(full)
    assert not {tuple(b) for b in shards[0]} & {tuple(b) for b in shards[1]}


def test_trainer_uses_it_for_two_steps(tiny_text_model, tmp_path):
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers import SentenceTransformerTrainingArguments as Args
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = SentenceTransformer(tiny_text_model, device="cpu")
    args = Args(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=8, batch_sampler=Sampler,
                save_strategy="no", report_to=[], use_cpu=True)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=_pairs(64),
                                         loss=MultipleNegativesRankingLoss(model))
    used = trainer.get_train_dataloader().batch_sampler
    assert isinstance(getattr(used, "batch_sampler", used), Sampler)  # accelerate wraps it only under DDP
    assert trainer.train().global_step == 2


@pytest.mark.parametrize("on", [True, False])
def test_recipe_config_selects_it_only_for_in_batch_negatives(tmp_path, on):
    from contrastkit.plugins.st.training import training_args
    from contrastkit.recipes.text import Config
    from sentence_transformers.base.sampler import BatchSamplers

    cfg = Config(length_batching=on)
    assert (training_args(cfg, tmp_path, in_batch_negatives=True).batch_sampler is Sampler) == on
    assert training_args(cfg, tmp_path, in_batch_negatives=False).batch_sampler == BatchSamplers.BATCH_SAMPLER


def test_recipe_trains_with_length_batching(tmp_path, tiny_text_model, pairs_csv):
    from contrastkit.recipes import text

    result = text.run(data=str(pairs_csv), model=tiny_text_model, output_dir=str(tmp_path / "out"), max_steps=2,
                      batch_size=4, length_batching=True)
    assert result.metrics["train"]["global_step"] == 2
