"""One MNRL step on 3 pairs per process, as test_gather.py checks it: dense, and the sparse recipe's SparseMNRL in
CSRLoss. Under torchrun each rank scores both and writes ``<out>/rank<N>-<mode>.json`` (both ranks printing to one
pipe can interleave their lines); the one-process case imports ``score`` into the test process instead."""

import json
import sys
from pathlib import Path

import torch.distributed as dist
from contrastkit.plugins.device import world_size
from contrastkit.plugins.st.formats import detect_format
from contrastkit.plugins.st.losses import choose_loss
from contrastkit.plugins.st.sparse import choose_sparse_loss, load_sparse
from datasets import Dataset
from sentence_transformers import SentenceTransformer

MODES = ("dense", "sparse")


def score(model_name: str, rank: int, sparse: bool) -> dict:
    """This process's loss on its 3 pairs: why it was chosen and the shape of each similarity matrix it scored."""
    pairs = Dataset.from_dict({"anchor": [f"question {rank}-{i}" for i in range(3)],
                               "positive": [f"answer {rank}-{i}" for i in range(3)]})
    if sparse:
        model = load_sparse(model_name, head="csr", active_dims=8)
        pairs, fmt = detect_format(pairs)
        choice = choose_sparse_loss(model, fmt)
        scoring = choice.loss.loss  # CSRLoss wraps the in-batch loss
    else:
        model = SentenceTransformer(model_name, device="cpu")
        choice = choose_loss(model, pairs)
        scoring = choice.loss
    scored = []
    similarity = scoring.similarity_fct

    def recording(a, b):
        """The loss's own similarity, with the shape of each matrix it scores written down."""
        out = similarity(a, b)
        scored.append(list(out.shape))
        return out

    scoring.similarity_fct = recording
    features = [model.tokenize(pairs["anchor"]), model.tokenize(pairs["positive"])]
    value = choice.loss(features, None)
    if isinstance(value, dict):  # CSRLoss returns its terms by name
        value = sum(value.values())
    value.backward()
    return {"rank": rank, "reason": choice.reason, "scored": scored, "loss": value.item()}


if __name__ == "__main__":
    if world_size() > 1:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    for mode in MODES:  # one process group serves both losses: each gathers on its own
        result = score(sys.argv[1], rank, sparse=mode == "sparse")
        (Path(sys.argv[2]) / f"rank{rank}-{mode}.json").write_text(json.dumps(result))
    if dist.is_initialized():
        dist.destroy_process_group()
