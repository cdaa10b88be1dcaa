"""Run by test_gather.py under torchrun: one MNRL step on 3 pairs per process; prints what the loss scored."""

import json
import sys

import torch.distributed as dist
from contrastkit.plugins.device import world_size
from contrastkit.plugins.st.losses import choose_loss
from datasets import Dataset
from sentence_transformers import SentenceTransformer

if world_size() > 1:
    dist.init_process_group("gloo")
rank = dist.get_rank() if dist.is_initialized() else 0
model = SentenceTransformer(sys.argv[1], device="cpu")
pairs = Dataset.from_dict({"anchor": [f"question {rank}-{i}" for i in range(3)],
                           "positive": [f"answer {rank}-{i}" for i in range(3)]})
choice = choose_loss(model, pairs)
scored = []
similarity = choice.loss.similarity_fct


def recording(a, b):
    """The loss's own similarity, with the shape of each matrix it scores written down."""
    out = similarity(a, b)
    scored.append(list(out.shape))
    return out


choice.loss.similarity_fct = recording
features = [model.tokenize(pairs["anchor"]), model.tokenize(pairs["positive"])]
value = choice.loss(features, None)
value.backward()
print(json.dumps({"rank": rank, "reason": choice.reason, "scored": scored, "loss": value.item()}))
if dist.is_initialized():
    dist.destroy_process_group()
