"""What an output folder holds: the files a push leaves out, the weights and tokenizer a load needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Files of an output folder that never go to the Hub: resumable checkpoints, training state,
# logs and local bookkeeping. Patterns are huggingface_hub's (fnmatch on paths relative to the
# folder; a trailing "/" means "everything under it"). Everything else in the folder is pushed.
IGNORE_PATTERNS = [
    "checkpoints/", "*/checkpoints/",  # trainer / Lightning checkpoints (resume=true reads them locally)
    "runs/",  # TensorBoard logs
    "examples/",  # an image run's held-out images for the local demo: the user's data, not pushed unasked
    "training_args.bin", "*.pt", "*.pth", "*.ckpt",  # pickles: trainer arguments, optimizer, scheduler, RNG state
    "trainer_state.json",  # a checkpoint's step counter and log: training state, pushed from a checkpoint folder
    ".contrastkit-*", "*/.contrastkit-*",  # local probes and markers
    "__pycache__/", "*/__pycache__/", "*.lock", ".DS_Store",
]
# Pickle weights: never loaded (safetensors only), so never downloaded either.
PICKLE_PATTERNS = ["*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle"]
IMAGE_TYPE = "image-encoder"  # "contrastkit_type" in an image output's config.json

# A tokenizer's vocabulary: without one, transformers builds an empty tokenizer and every text embeds the same.
VOCAB_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "*.model", "*.tiktoken")


def has_safetensors(folder: Path) -> bool:
    """Whether the folder holds safetensors weights outside its checkpoints."""
    return any(p for p in folder.rglob("*.safetensors") if "checkpoints" not in p.relative_to(folder).parts)


def without_tokenizer(folder: Path) -> str | None:
    """The module folder (relative, "." for the root) of a Transformer module that reads text but has no tokenizer
    vocabulary, or None. Image-only Transformer modules and other modules (StaticEmbedding) are not checked."""
    for module in read_json(folder / "modules.json", list):
        if not isinstance(module, dict) or not str(module.get("type", "")).endswith(".Transformer"):
            continue
        path = folder / str(module.get("path") or "")
        settings = read_json(path / "sentence_bert_config.json")
        if "text" not in settings.get("modality_config", {"text": None}):  # older folders: text only
            continue
        if not any(next(path.glob(pattern), None) for pattern in VOCAB_FILES):
            return path.relative_to(folder).as_posix()
    return None


def read_json(path: Path, kind: type = dict) -> Any:
    """The file's JSON if it is a ``kind`` (a dict unless told), else an empty one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return kind()
    return data if isinstance(data, kind) else kind()


def files_to_push(output_dir: str | Path) -> list[str]:
    """The paths (relative, '/'-separated) that ``push`` would upload: everything but IGNORE_PATTERNS."""
    from huggingface_hub.utils import filter_repo_objects
    from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS

    folder = Path(output_dir)
    paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return list(filter_repo_objects(paths, ignore_patterns=IGNORE_PATTERNS + DEFAULT_IGNORE_PATTERNS))
