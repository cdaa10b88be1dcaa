"""Run by test_gather.py under torchrun: one MNRL step on 3 pairs per process (``sparse``: the sparse recipe's
SparseMNRL in CSRLoss); writes what the loss scored to ``<out>/rank<N>.json`` (both ranks printing to one pipe
can interleave their lines)."""

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

if world_size() > 1:
    dist.init_process_group("gloo")
rank = dist.get_rank() if dist.is_initialized() else 0
out = Path(sys.argv[2])
sparse = len(sys.argv) > 3 and sys.argv[3] == "sparse"
pairs = Dataset.from_dict({"anchor": [f"question {rank}-{i}" for i in range(3)],
                           "positive": [f"answer {rank}-{i}" for i in range(3)]})
if sparse:
    model = load_sparse(sys.argv[1], head="csr", active_dims=8)
    pairs, fmt = detect_format(pairs)
    choice = choose_sparse_loss(model, fmt)
    scoring = choice.loss.loss  # CSRLoss wraps the in-batch loss
else:
    model = SentenceTransformer(sys.argv[1], device="cpu")
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
(out / f"rank{rank}.json").write_text(json.dumps({"rank": rank, "reason": choice.reason, "scored": scored,
                                                  "loss": value.item()}))
if dist.is_initialized():
    dist.destroy_process_group()
