"""The similarity demo: a base and a fine-tuned model side by side, every score with their difference.

Open it with ``contrastkit demo [model=PATH_OR_ID] [compare_to=PATH_OR_ID] [port=7860]`` or
``python -m contrastkit.demo.app``. ``from contrastkit.demo.app import demo`` gives the app built from the defaults
(built on first access, so importing this module loads no model). Tabs: text ↔ text, image ↔ image, text ↔ image,
similarity matrix, search. The functions behind them live in ``compare.py`` (the comparisons), ``core.py``
(models), ``inputs.py`` (text boxes and uploads), ``corpus.py`` (search), ``retriever.py`` (run folders,
checkpoints and a reranker's retriever), ``image_runs.py`` (an image run's base and examples) and ``render.py``
(HTML, heatmaps). Either side may be a bi-encoder, a sparse encoder, a reranker or an image model.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contrastkit.plugins.config import field
from contrastkit.plugins.errors import UserError

from . import compare, core, corpus, render
from .image_runs import crowding_note, example_sets, order_by_disagreement, run_examples, starting_slot
from .retriever import checkpoint_note, run_folder

EXAMPLES = Path(__file__).resolve().parent / "examples"
EXAMPLE_IMAGES = sorted(str(p) for p in EXAMPLES.glob("*.png"))
# The default example is a held-out pair of the bundled FAQ data (the recipe never trains on it): the base model
# scores a beginner's exercise plan above the right answer, and a model from `contrastkit run text` on the bundled
# pairs ranks the right answer first (tests/demo/test_demo_feedback.py checks both).
TEXT_A = "How many rest days should I take each week?"
TEXTS_B = ("Most people benefit from one or two, and hard sessions for the same muscle group should be separated by at "
           "least 48 hours.\n"
           "Begin with brisk thirty-minute walks five days a week and add two short strength sessions, increasing "
           "effort by about ten percent each week.\n"
           "My train was cancelled this morning.")
TEXT_A2 = "How much sunscreen should I use?"
TEXTS_B2 = ("About a shot glass, roughly 30 millilitres, covers the whole body; reapply every two hours and straight "
            "after swimming or heavy sweating.\n"
            "A scale from 0 to 11 and above measuring the strength of sunburn-causing radiation; at 3 or higher you "
            "should wear sun protection.")
HOW_TO_READ = ("**How to read the scores:** each number is the cosine similarity of two embeddings (1: same meaning, "
               "around 0: unrelated). What matters is the order: a model that learned your task scores the right "
               "match above the others. The difference column shows what training changed: "
               f"<span style='color:{render.UP}'>green</span> = the fine-tuned model scores the pair higher, "
               f"<span style='color:{render.DOWN}'>red</span> = lower.")
READ_KINDS = {
    "cosine similarity": "the cosine similarity of two embeddings (1: same meaning, around 0: unrelated)",
    "dot product": "the dot product of two sparse vectors (0: no active dimension in common; higher: closer, with "
                   "no fixed maximum)",
    "relevance score": "a reranker's relevance score: the CrossEncoder reads both texts at once and rates how well "
                       "the second answers the first (higher: more relevant); it is not a cosine",
}
UPLOAD_CEILING = 10
BATCH = 32  # concurrent two-text compares served by one encode (bench/demo_latency.py)
CONCURRENCY = 1
MATRIX_TEXTS = ("How do I keep pasta from sticking?\nStir noodles in plenty of boiling water.\n"
                "Why is my bread dense?\nThe dough did not rise long enough.\nHow do I reset my router?")
QUERY = "why is my rice mushy"
CAT_TEXTS = "A cat is sitting on a rug.\nStocks fell sharply today."
CAPTIONS = "a red circle\na blue square\na photo of a dog"


@dataclass
class DemoConfig:
    """Options of ``contrastkit demo`` (``key=value``)."""

    model: str | None = field(None, "fine-tuned model (bi-encoder, sparse encoder, reranker or image model): output "
                                    "folder or Hub id (default: the newest run under outputs/)")
    compare_to: str | None = field(None, "base model to compare with (default: the packaged all-MiniLM-L6-v2)")
    port: int = field(7860, "port to serve on")
    host: str = field("127.0.0.1", "address to bind; 0.0.0.0 makes the app reachable from other machines")
    share: bool = field(False, "create a public gradio.live link (off: the app stays on this machine)")
    max_upload_mb: int = field(10, "largest file an upload may be, in MB")
    trust_remote_code: bool = field(False, "allow a model's own code from the Hub to run")
    precision: str = field("auto", "auto: bf16 autocast where the hardware computes bfloat16 natively (a GPU, or a "
                                   "CPU with AMX/AVX512-BF16; scores move by about 0.001), else fp32 | fp32 | bf16")
    cpu_threads: int = field(1, "torch CPU threads (one answers small requests fastest on a busy CPU; 0: torch's "
                                "default)")

    def validate(self) -> None:
        """Reject values the server cannot use before any model is loaded."""
        if not 0 < self.port < 65536:
            raise UserError(f"port={self.port} is not a TCP port; pass a number from 1 to 65535, e.g. port=7860")
        if self.max_upload_mb <= 0:
            raise UserError(f"max_upload_mb={self.max_upload_mb} must be positive, e.g. max_upload_mb=10")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise UserError(f"precision='{self.precision}' is not one of auto, fp32, bf16; e.g. precision=fp32")
        if self.cpu_threads < 0:
            raise UserError(f"cpu_threads={self.cpu_threads} must be 0 (torch's default) or more, e.g. cpu_threads=1")


def load_slots(cfg: DemoConfig) -> tuple[list[core.Slot], str]:
    """The base and (when there is one) fine-tuned model, plus the status text shown at the top of the page. A model
    that fails to load is reported there; when none loads, a ``UserError`` names each failure."""
    from contrastkit.plugins.report import OUTPUTS_ROOT, latest_output_dir, read_metrics

    fine_tuned = cfg.model or (str(latest_output_dir() or "") or None)
    tuned = core.load_slot("fine-tuned", fine_tuned, cfg.trust_remote_code) if fine_tuned else None
    # an image model is compared with the encoder its run started from: the text default cannot embed images
    from_start = cfg.compare_to is None and tuned is not None and tuned.kind == "image"
    slots = [starting_slot(tuned) if from_start else
             core.load_slot("base", cfg.compare_to or core.BASE_MODEL, cfg.trust_remote_code)] + [tuned] * bool(tuned)
    from contrastkit.plugins.device import auto_bf16

    bf16 = cfg.precision == "bf16" or cfg.precision == "auto" and auto_bf16(cpu=True)
    for s in slots:
        s.bf16 = bf16
    if all(s.error for s in slots):
        raise UserError("no model could be loaded: " + "; ".join(f"the {s.role} model '{s.name}' ({s.error})"
                                                                  for s in slots))
    lines = []
    for s in slots:
        if s.error:
            lines.append(f"⚠️ **{s.role}** `{s.name}` could not be loaded: {s.error}. "
                         f"The app keeps running with the other model.")
            print(f"contrastkit: warning: the {s.role} model '{s.name}' could not be loaded ({s.error}); the demo "
                  f"runs without it", file=sys.stderr, flush=True)
        else:
            lines.append(f"**{s.role}**: `{s.name}` ({s.describe_kind()})")
            if s.kind == "cross":
                icon = "" if s.retriever_from_run else "ℹ️ "  # marks a fallback
                lines.append(f"{icon}The {s.role} reranker: {s.retriever_note}.")
            folder = run_folder(s.name)
            metrics = read_metrics(folder) if folder else None
            note = checkpoint_note(s.name)
            if note:
                lines.append(note)
            summary = render.training_summary(metrics)
            if summary:
                lines.append(summary)
            crowded = crowding_note(metrics)
            if crowded:
                lines.append(crowded)
    if bf16:
        lines.append("Scores are computed under bf16 autocast (within about 0.002 of fp32; `precision=fp32` for "
                     "exact fp32).")
    if from_start:
        lines.append("ℹ️ The base is the encoder the run started from; pass `compare_to=` to compare with another "
                     "model.")
    if not fine_tuned:
        lines.append(f"ℹ️ No fine-tuned model found under `{OUTPUTS_ROOT}/`, so only the base model is shown. "
                     f"Train one with `contrastkit run text`, or pass `model=PATH_OR_ID`.")
    return slots, "  \n".join(lines)


def no_difference(slots: list[core.Slot]) -> str:
    """Why no score gets a 'fine-tuned − base' difference ("" when some do): that needs two loaded models with the
    same kind of score (``core.same_scale``) that embed a common input."""
    loaded = [s for s in slots if s.model is not None]
    if len(loaded) != 2:
        return "only one model is loaded"
    a, b = loaded
    if not core.same_scale(slots):
        return (f"the two models' scores are different kinds of number ({a.role}: {a.score_name}, {b.role}: "
                f"{b.score_name})")
    if not set(a.modalities) & set(b.modalities):
        return f"the {a.role} model embeds {a.describe()} only and the {b.role} model {b.describe()} only"
    return ""


def header(slots: list[core.Slot]) -> str:
    """The page's title and first line: the difference is promised only for a pair whose tables show it."""
    loaded = [s for s in slots if s.model is not None]
    why = no_difference(slots)
    if why:
        who = "both models" if len(loaded) == 2 else " and ".join(f"the {s.role} model" for s in loaded)
        line = f"Every score is shown for {who}; {why}, so no difference is shown."
    else:
        threshold = f"{render.NOTICEABLE:.0%} of the larger score" if slots[-1].score_name == "dot product" \
            else f"{render.NOTICEABLE}"
        common = [m for m in loaded[0].modalities if loaded[1].embeds(m)]
        only = f" (only {' and '.join(common)} inputs are scored by both)" if \
            loaded[0].modalities != loaded[1].modalities else ""
        line = (f"Every score is shown for both models, with the difference (fine-tuned − base) highlighted when it "
                f"is {threshold} or more{only}.")
    return f"# contrastkit similarity demo\n{line}"


def how_to_read(slots: list[core.Slot]) -> str:
    """The how-to-read line for the loaded models: ``HOW_TO_READ`` for two cosine models that score a common input,
    else what each model's numbers are, and whether their difference is shown."""
    loaded = [s for s in slots if s.model is not None]
    names = list(dict.fromkeys(s.score_name for s in loaded))
    why = no_difference(slots)
    if names in ([], ["cosine similarity"]) and not why:
        return HOW_TO_READ
    if len(names) == 1:
        what = f"each number is {READ_KINDS.get(names[0], names[0])}."
    else:
        what = " ".join(f"The {s.role} model's numbers are {READ_KINDS.get(s.score_name, s.score_name)}."
                        for s in loaded)
    if not why:
        diff = ("The difference column shows what training changed: "
                f"<span style='color:{render.UP}'>green</span> = the fine-tuned model scores the pair higher, "
                f"<span style='color:{render.DOWN}'>red</span> = lower.")
    elif len(loaded) == 2:
        diff = (f"There is no difference column, since {why}: compare the order (#1 beside a score: that model's "
                "best match).")
    else:
        diff = ""
    return (f"**How to read the scores:** {what} What matters is the order: a model that learned your task scores "
            f"the right match above the others. {diff}").strip()


def _guard(fn, n_outputs: int = 1):
    """Wrap a handler so bad input or a failing model becomes a message in the page, never an error popup.
    The wrapper keeps ``fn``'s signature, so Gradio still sees a ``gr.Progress()`` default argument."""
    @functools.wraps(fn)
    def handler(*args: Any):
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - keep the app up whatever a model or file does
            text = render.problem(exc)
        return text if n_outputs == 1 else (None, text)
    return handler


def _guard_batch(fn):
    """``_guard`` for a ``batch=True`` handler: ``fn`` maps lists of inputs to one result (HTML or an exception)
    per request; Gradio gets the list of outputs back, every failure shown in its own page."""
    @functools.wraps(fn)
    def handler(*columns: list):
        try:
            results = fn(*columns)
        except Exception as exc:  # noqa: BLE001 - the whole batch failed: every request says why
            results = [exc] * len(columns[0])
        return [[render.problem(r) if isinstance(r, BaseException) else r for r in results]]
    return handler


def build_demo(cfg: DemoConfig | None = None) -> Any:
    """The Gradio app for ``cfg`` (models are loaded here, once; see ``load_slots`` for load failures)."""
    import gradio as gr

    cfg = cfg or DemoConfig()
    slots, status = load_slots(cfg)
    if cfg.cpu_threads:
        # Requests are a few short texts: extra intra-op threads barely help and, when other work shares
        # the CPU, their spin-waits make a two-text compare up to ~10x slower (bench/demo_latency.py).
        import torch

        torch.set_num_threads(cfg.cpu_threads)
    max_bytes = cfg.max_upload_mb * 2**20
    has_images = any(s.embeds("image") for s in slots)
    has_texts = any(s.embeds("text") for s in slots)  # two image models: the text tabs say so once, buttons off
    has_pairs = any(s.embeds("text", "image") for s in slots)
    # an image run's held-out images (a few per class): the image tabs open on the user's own classes
    pictures = run_examples(slots[-1]) if slots[-1].kind == "image" else []
    sets = order_by_disagreement(example_sets(pictures), slots)  # the page opens where the models differ

    def compare_texts(a_list, b_list):
        results = compare.compare_texts_many(slots, list(zip(a_list, b_list)))
        return [r if isinstance(r, Exception) else render.scores_table(r, slots) for r in results]

    def compare_images(a, b):
        return render.scores_table(compare.compare_images(slots, a, b, max_bytes), slots, "pair", ranks=True)

    def text_image(image, texts):
        return render.scores_table(compare.compare_text_image(slots, image, texts, max_bytes), slots,
                                   "compared with the image")

    def matrix(texts, images):
        labels, matrices, notes = compare.similarity_matrix(slots, texts, images, max_bytes)
        return render.heatmaps(labels, matrices, slots), render.message(" ".join(notes)) if notes else ""

    def search(query, corpus_file, top_k, progress=gr.Progress()):  # noqa: B008 - how Gradio injects it
        def step(done, total, what):
            progress(done / total if total else 1.0, desc=f"{what}: {done}/{total} documents (once per corpus)")

        return render.hits_table(corpus.search(slots, query, corpus_file, top_k, max_bytes, step), slots)

    with gr.Blocks(title=render.page_title(slots)) as demo:
        gr.Markdown(header(slots))
        gr.Markdown(status, elem_id="ck-status")
        gr.Markdown(how_to_read(slots), elem_id="ck-how-to-read")
        with gr.Tab("Text ↔ text"):
            if not has_texts:
                gr.Markdown(f"ℹ️ {core.needs_sentence(slots, 'text')}", elem_id="ck-text-note")
            a = gr.Textbox(label="Text A", value=TEXT_A)
            b = gr.Textbox(label="Texts to compare with A (one per line)", value=TEXTS_B, lines=4)
            go = gr.Button("Compare texts", variant="primary", interactive=has_texts)
            out = gr.HTML(elem_id="ck-text-result")
            gr.Examples([[TEXT_A, TEXTS_B], [TEXT_A2, TEXTS_B2], ["The cat sat on the mat.", CAT_TEXTS]], [a, b])
            # Concurrent requests wait in Gradio's queue; batch=True hands up to BATCH of them to one call, which
            # encodes all their texts at once. One call at a time (concurrency_limit=1): a second batch running
            # beside it would only split the same CPU cores.
            # Enter in Text A compares too (Text B takes several lines, so Enter there is a new line)
            gr.on(_submits(go, a, has_texts), _guard_batch(compare_texts), [a, b], out, api_name="compare_texts",
                  batch=True, max_batch_size=BATCH, concurrency_limit=CONCURRENCY)
        with gr.Tab("Image ↔ image"):
            if not has_images:
                gr.Markdown(f"ℹ️ {core.needs_sentence(slots, 'image')}", elem_id="ck-image-note")
            with gr.Row():
                first = sets[0] if sets else [_example(0), [_example(1)]]
                img_a = gr.File(label="Image A", type="filepath", value=first[0], elem_id="ck-image-a")
                img_b = gr.File(label="Images to compare with A (one or more)", type="filepath",
                                file_count="multiple", value=[p for p in first[1] if p], elem_id="ck-image-b")
            go = gr.Button("Compare images", variant="primary", interactive=has_images)
            out = gr.HTML(elem_id="ck-image-result")
            if sets:  # A's class-mate first: the model that learned the classes ranks it #1
                gr.Markdown("Examples: held-out images of the run's own classes. The first image B is of A's class; "
                            "#n beside a score is its place in that model's order.")
                gr.Examples(sets, [img_a, img_b])
            go.click(_guard(compare_images), [img_a, img_b], out, api_name="compare_images")
        with gr.Tab("Text ↔ image"):
            if not has_pairs:
                gr.Markdown(f"ℹ️ {core.needs_sentence(slots, 'text', 'image')}", elem_id="ck-pair-note")
            with gr.Row():
                img = gr.File(label="Image", type="filepath", value=_example(0))
                captions = gr.Textbox(label="Texts to match with the image (one per line)", value=CAPTIONS, lines=4)
            go = gr.Button("Match texts to image", variant="primary", interactive=has_pairs)
            out = gr.HTML(elem_id="ck-text-image-result")
            go.click(_guard(text_image), [img, captions], out, api_name="text_image")
        with gr.Tab("Similarity matrix"):
            with gr.Row():
                # two image models embed no text: the box would only offer texts neither can score
                texts = gr.Textbox(label="Texts (one per line)", value=MATRIX_TEXTS if has_texts else "", lines=6,
                                   visible=has_texts)
                images = gr.File(label="…or images (used instead of the texts when given)" if has_texts else
                                 "Images (two or more)", type="filepath",
                                 file_count="multiple", visible=has_images,
                                 value=pictures if pictures and not any(s.embeds("text") for s in slots) else None)
            go = gr.Button("Draw heatmaps", variant="primary")
            plot = gr.Plot(label="Cosine similarity" if all(s.score_name == "cosine similarity" for s in slots
                                                            if s.model is not None) else "Scores per model")
            note = gr.HTML()
            go.click(_guard(matrix, 2), [texts, images], [plot, note], api_name="matrix")
        with gr.Tab("Search"):
            if not has_texts:
                gr.Markdown(f"ℹ️ {core.needs_sentence(slots, 'text')}", elem_id="ck-search-note")
            with gr.Row():
                query = gr.Textbox(label="Query", value=QUERY, scale=3)
                top_k = gr.Slider(1, 20, value=5, step=1, label="Top k", scale=1)
            corpus_file = gr.File(label=f"Corpus: {corpus.CORPUS_FORMATS} (a column or field named "
                                        f"{'/'.join(corpus.CORPUS_COLUMNS[:3])}/...), up to {cfg.max_upload_mb} MB; "
                                        f"empty = the bundled FAQ answers", type="filepath", elem_id="ck-corpus")
            go = gr.Button("Search", variant="primary", interactive=has_texts)
            out = gr.HTML(elem_id="ck-search-result")
            gr.on(_submits(go, query, has_texts), _guard(search), [query, corpus_file, top_k], out,
                  api_name="search")
    return demo


def _submits(button: Any, box: Any, enabled: bool) -> list:
    """The button's click, plus Enter in ``box`` where the button is on (a disabled button's tab must not run
    through the keyboard)."""
    return [button.click, box.submit] if enabled else [button.click]


def _example(i: int) -> str | None:
    return EXAMPLE_IMAGES[i] if i < len(EXAMPLE_IMAGES) else None


def upload_ceiling(cfg: DemoConfig) -> int:
    """Gradio's own upload limit, in bytes: UPLOAD_CEILING x max_upload_mb. Gradio refuses a larger file in the
    browser with a popup and the server never hears of it, so the real limit (max_upload_mb) is checked by the demo,
    which says so in the page; Gradio's limit only stops absurd files from filling the disk."""
    return UPLOAD_CEILING * cfg.max_upload_mb * 2**20


def check_port(host: str, port: int) -> None:
    """A one-line error when ``host:port`` cannot be served on (taken by another program, or not this machine's)."""
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        reason = (exc.strerror or str(exc)).split(" (while")[0]  # Python adds the address it tried
        raise UserError(f"cannot serve on {host}:{port} ({reason}); pass another port=, e.g. port={port + 1}") from None


def launch(cfg: DemoConfig | None = None, block: bool = True) -> Any:
    """Build and serve the app on ``cfg.host:cfg.port`` (127.0.0.1, share off, unless asked otherwise)."""
    cfg = cfg or DemoConfig()
    check_port(cfg.host, cfg.port)  # checked first: loading the models takes seconds
    demo = build_demo(cfg)
    if cfg.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"contrastkit: warning: host={cfg.host} makes the demo reachable from other machines")
    try:
        demo.launch(server_name=cfg.host, server_port=cfg.port, share=cfg.share, show_error=False,
                    max_file_size=upload_ceiling(cfg), prevent_thread_lock=not block)
    except OSError as exc:
        raise UserError(f"cannot serve on {cfg.host}:{cfg.port} ({exc}); pass another port=, e.g. "
                        f"port={cfg.port + 1}") from None
    return demo


def __getattr__(name: str) -> Any:
    # `demo` is built on first access (PEP 562), so `contrastkit demo model=X` never loads the defaults too.
    if name == "demo":
        globals()["demo"] = value = build_demo(DemoConfig())
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    launch(DemoConfig())
