"""The CSR head on a dense base that has no sentence-transformers config (a plain transformers checkpoint)."""

import shutil


def test_a_small_plain_transformers_base_trains_a_csr_head(tmp_path, tiny_text_model):
    """sentence-transformers gives such a base k_aux=512; the tiny base's head is 128 wide, and torch.topk failed
    on the first training forward."""
    from contrastkit.plugins.st.sparse import load_sparse

    plain = tmp_path / "plain-bert"  # the tiny model's transformer files alone: config.json, weights, tokenizer
    shutil.copytree(tiny_text_model, plain, ignore=shutil.ignore_patterns(
        "modules.json", "config_sentence_transformers.json", "sentence_bert_config.json", "1_Pooling", "README.md"))
    model = load_sparse(str(plain), active_dims=4)
    head = list(model)[-1]
    assert head.hidden_dim == 128 and head.k == 4 and head.k_aux <= 128
    model.train()
    out = model(model.preprocess(["a first text", "a second, longer text"]))
    assert out["sentence_embedding"].shape == (2, 128)
    assert ((out["sentence_embedding"] != 0).sum(dim=1) <= 4).all()
