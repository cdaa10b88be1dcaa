"""Draw the quality gains measured by the benches as one chart, from their saved output.

    python bench/chart.py                       # bench/results/{text,image}/*.log -> docs/benchmarks.png

Inputs are the unedited stdout of ``bench/text_speed.py`` (``results/text/DATASET-drawN-*.log``; N is its
``--seed``) and of ``bench/image_quality.py`` (``results/image/SETTING,threads1-seedN.log``; N is the recipe seed),
all evaluated on Fashion-MNIST's 10,000 test images, plus the re-evaluation of the eleventh session's first eight
default runs (``results/image-trials/full-test/alphagrid-*.log``). Runs scored on a 1,000-image sample before that
(``results/image/sample1000/``) are not drawn: docs/image.md explains why. Nothing is typed in here: every point is a
line of one of those files. Left: the text recipe's MRR@10 gain over the hand-written sentence-transformers default,
per dataset and draw. Right: the image recipe's kNN top-1 gain over the pretrained backbone, per setting and seed,
at the setting's own blend and, where ``IMAGE_BLENDS`` names it, at another blend of the same runs. Bars are means,
dots single runs, dashed lines the targets.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: sweep arms that are the recipe's defaults (now / before a round), as text_speed.py prints them
WHOLE = {"lr=1.5e-4,scale=20,warmup=0.1,freeze=1,batch=16",
         "lr=1.5e-4,scale=20,warmup=0.1,freeze=1,batch=16,bf16=1"}  # bf16: the default on this CPU since session 4
PAIRS = {"lr=1.5e-4,scale=20,warmup=0.1,freeze=1,batch=16,bf16=1,maxlen=64"}  # max_train_tokens=64: session 8
OLD_DEFAULTS = {"lr=2e-4,scale=30,warmup=0.1", "lr=2e-4,scale=30,warmup=0.1,batch=32"}
#: the defaults since session 10: mined hard negatives (docs/speed.md), mined in float32
MINE = "scale=20,warmup=0.1,freeze=1,batch=16,bf16=1,mine=1,lr=1e-4,skip=3"
MINED_WHOLE = {MINE}
MINED = {MINE + ",maxlen=64"}
#: the same, mined in bf16 autocast: what the option did in sessions 6-8 (docs/speed.md, ninth session)
MINED_BF16 = {MINE + ",mbf16=1,maxlen=64"}
ARMS = {**dict.fromkeys(OLD_DEFAULTS, "old defaults"), **dict.fromkeys(WHOLE, "pairs alone, whole texts"),
        **dict.fromkeys(PAIRS, "no mining (defaults before)"),
        **dict.fromkeys(MINED_WHOLE, "mined, whole texts"),
        MINE + ",mbf16=1": "mined in bf16, whole texts", **dict.fromkeys(MINED_BF16, "mined in bf16 (sessions 6-8)"),
        **dict.fromkeys(MINED, "defaults (mined negatives)")}
#: no text of these sets reaches 64 tokens, so the cut changes nothing and whole-text runs count as cut ones
SHORT = {"wordnet": {"pairs alone, whole texts": "no mining (defaults before)",
                     "mined, whole texts": "defaults (mined negatives)",
                     "mined in bf16, whole texts": "mined in bf16 (sessions 6-8)"}}
COLORS = {"old defaults": "grey", "pairs alone, whole texts": "lightsteelblue",
          "no mining (defaults before)": "tab:blue", "mined, whole texts": "darkseagreen",
          "mined in bf16 (sessions 6-8)": "yellowgreen", "defaults (mined negatives)": "tab:green"}
TEXT_ROW = re.compile(r"^(?P<label>.+?)\s+[\d.]+ pairs/s .*MRR@10 [\d.]+ \((?P<gain>[+-][\d.]+)\)")
IMAGE_ROW = re.compile(r"^\w+\s+(?P<before>[\d.]+)\s+(?P<after>[\d.]+)\s+(?P<gain>[+-][\d.]+)\s+\d+\s")
RUN_BLEND = re.compile(r"^WiSE-FT: .*\(wise_ft=([\d.]+);")
IMAGE_BLEND = re.compile(r"alpha ([\d.]+): ([+-][\d.]+)")
REEVAL_ROW = re.compile(r"seed(\d+)/simclr: .*")
#: other blends of the same runs drawn as their own group: setting -> alphas (1: the trained weights)
IMAGE_BLENDS = {"defaults,threads1": (0.35, 1.0), "epochs6,wise_ft0.5,threads1": (1.0,), "epochs6,threads1": (0.5,),
                "freeze_fraction0.3,epochs14,wise_ft0.65,threads1": (1.0,),
                "epochs4,threads1": (0.5,)}


def text_gains(folder: Path) -> dict[tuple[str, str], dict[int, float]]:
    """(dataset, arm of ARMS) -> {draw: MRR@10 gain over hand-written}; the last file read wins."""
    out: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for path in sorted(folder.glob("*.log")):
        draw = re.search(r"-draw(\d+)", path.name)
        if not draw:  # other benches' logs kept beside them (e.g. text_overhead.py's overhead-tiny-cpu.log)
            print(f"skipped {path.name}: not named DATASET-drawN-*.log")
            continue
        lines = path.read_text().splitlines()
        head = re.match(r"data: (\w+) = .*?; (\d+) training pairs", lines[0])
        if not head:
            raise SystemExit(f"{path}: not a text_speed.py output named DATASET-drawN-*.log")
        name = head[1] + ("" if head[2] == "512" else f", {int(head[2]):,} pairs")
        for line in lines:
            row = TEXT_ROW.match(line)
            if row and row["label"] in ARMS:
                arm = SHORT.get(head[1], {}).get(ARMS[row["label"]], ARMS[row["label"]])
                out[(name, arm)][int(draw[1])] = float(row["gain"])
    return out


def image_gains(folder: Path, reeval: Path) -> dict[str, dict[int, float]]:
    """setting (with its blend) -> {seed: kNN top-1 gain over the pretrained backbone on the full test set}."""
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for path in sorted(folder.glob("*.log")):
        name = re.fullmatch(r"(.+)-seed(\d+)\.log", path.name)
        lines = path.read_text().splitlines()
        rows = [m for m in map(IMAGE_ROW.match, lines) if m]
        blend = next((m for m in map(RUN_BLEND.search, lines) if m), None)  # the recipe's own line: its blend
        if not name or not rows or not blend:
            raise SystemExit(f"{path}: not an image_quality.py output named SETTING-seedN.log")
        out[f"{name[1]} @ {float(blend[1]):g}"][int(name[2])] = float(rows[-1]["gain"])
        blends = dict(IMAGE_BLEND.findall(next((x for x in lines if "WiSE-FT blends" in x), "")))
        for alpha in IMAGE_BLENDS.get(name[1], ()):
            out[f"{name[1]} @ {alpha:g}"][int(name[2])] = float(blends[f"{alpha:g}"])
    for path in sorted(reeval.glob("alphagrid-*.log")):  # the first eight default runs, on the full test set
        for line in path.read_text().splitlines():
            seed, gain = REEVAL_ROW.search(line), re.search(r"alpha 0\.25: full ([+-][\d.]+)", line)
            out["defaults (seeds 42, 1-7) @ 0.25"][int(seed[1])] = float(gain[1])
    return out


def _strip(ax, groups: list[tuple[str, dict[int, float], str]], target: float, ylabel: str, title: str) -> None:
    for x, (label, points, color) in enumerate(groups):
        values = [points[k] for k in sorted(points)]
        ax.bar(x, sum(values) / len(values), color=color, alpha=0.35, width=0.7)
        ax.scatter([x] * len(values), values, color=color, s=22, zorder=3)
    ax.axhline(target, color="black", linestyle="--", linewidth=1)
    ax.text(len(groups) - 0.5, target, f" target +{target:g}", va="bottom", ha="right", fontsize=8)
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.set_xticks(range(len(groups)), [g[0] for g in groups], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(HERE / "results"))
    parser.add_argument("--out", default=str(HERE.parent / "docs" / "benchmarks.png"))
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    text = text_gains(Path(args.results) / "text")
    image = image_gains(Path(args.results) / "image", Path(args.results) / "image-trials" / "full-test")
    order = ["wordnet", "foldoc", "manpages", "bible", "wordnet, 2,048 pairs"]
    role = {"wordnet": "tuning", "foldoc": "tuning", "manpages": "check", "bible": "near ceiling"}
    tgroups = [(f"{d} ({role.get(d, 'larger')}): {arm}", text[(d, arm)], COLORS[arm])
               for d in order for arm in COLORS if (d, arm) in text]
    first = [s for s in image if s.startswith("defaults")]
    six = [s for s in image if s.startswith("epochs6,wise_ft0.5")]  # the defaults of the eleventh session
    now = [s for s in image if s.startswith("freeze_fraction0.3,epochs14,wise_ft0.65")]  # since the twelfth
    settings = sorted(now) + sorted(six) + sorted(first, key=lambda s: ("seeds 42" not in s, s)) + sorted(
        s for s in image if s not in first + six + now)

    def label(setting: str) -> str:
        name, _, alpha = setting.partition(" @ ")
        blend = "trained weights" if alpha == "1" else f"blend {alpha}"
        if setting in now:
            return f"now, 14 epochs, early 30% fixed: {blend} (fresh)"
        if setting in six:
            return f"before, 6 epochs: {blend} (fresh)"
        if setting in first:
            return f"before, 2 epochs: {blend} ({'seeds 42, 1-7' if 'seeds 42' in name else 'fresh'})"
        name = re.sub(r",?threads1", "", name)
        name = re.sub(r"([a-z])(\d[\d.e-]*)(?=,|$)", r"\1 \2", name).replace(",", ", ")
        return f"screen: {name}, {blend}"

    igroups = [(label(s), image[s], "tab:red" if s in now else "tab:orange" if s in first + six else "navajowhite")
               for s in settings]
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.2), gridspec_kw={"width_ratios": [len(tgroups), len(igroups)]})
    _strip(left, tgroups, 0.03, "MRR@10 gain over hand-written", "Text: recipe vs hand-written script, 512 pairs"
           "\n(dots: draws of the data; bars: means)")
    _strip(right, igroups, 0.02, "kNN top-1 gain over pretrained", "Images: Fashion-MNIST, 10,000 test images, SimCLR\n"
           "(dots: seeds; red: defaults now; orange: before; light: seeds 42, 2)")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}: {len(tgroups)} text groups, {len(igroups)} image settings")


if __name__ == "__main__":
    main()
