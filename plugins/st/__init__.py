"""sentence-transformers adapter, one module per concern; import from the modules, not from this package.

- ``models``: load a SentenceTransformer (the default model from its packaged copy when installed).
- ``formats``: name each column's role and check the rows (the Inputs tables of ST's losses).
- ``losses``: the loss table, the auto rule and ``choose_loss``.
- ``evaluation``: the evaluator that fits a format and the metrics worth printing.
- ``mining``: hard negatives mined with the base model.
- ``training``: trainer arguments, precision, the trainer, resuming and the out-of-memory fallback.
- ``callbacks``: before/after evaluation and no pickled arguments in checkpoints.
- ``sampler``: length-grouped, duplicate-free batches for in-batch-negative losses.
- ``clip``: image-text (CLIP-style) models, their loss and recall evaluator.
- ``clip_data``: (image, text) pairs read and checked, and the held-out split by image.
- ``shapes``: the drawn-shapes sample data of the image-text recipe.
- ``static``: static embeddings distilled with model2vec (``model=static``), their speed beside the dense model.
"""
