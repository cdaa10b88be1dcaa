"""The ``contrastkit`` command: list | show | run | cp | push | push-demo | demo.

Heavy libraries are imported inside the commands that need them, so ``--help``, ``list`` and
``show`` never import torch. Bad input exits with code 2 and one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path
from typing import NoReturn

from contrastkit.plugins.errors import UserError, did_you_mean

EPILOG = """examples:
  contrastkit list
  contrastkit show text
  contrastkit run text data=pairs.csv epochs=1
  contrastkit run image --config my.yaml method=byol
  contrastkit cp text my_text.py && contrastkit run ./my_text.py
  contrastkit push outputs/text-... user/my-model private=true
  contrastkit demo model=outputs/text-...
"""


def cmd_list(args: argparse.Namespace) -> int:
    from contrastkit.recipes import list_recipes

    infos = list_recipes()
    width = max(len(i.name) for i in infos)
    for info in infos:
        source = "" if info.source == "contrastkit" else f"  [from {info.source}]"
        if info.error:
            print(f"{info.name:<{width}}  BROKEN: {info.error}{source}")
        else:
            print(f"{info.name:<{width}}  {info.description}{source}")
    return 0


def _format_default(value: object) -> str:
    if isinstance(value, str):
        return value if value else "''"
    return repr(value) if not isinstance(value, (list, dict)) else str(value)


def cmd_show(args: argparse.Namespace) -> int:
    from contrastkit.plugins.config import describe
    from contrastkit.recipes import load_recipe

    module = load_recipe(args.recipe)
    doc = (module.__doc__ or "").strip()
    if doc:
        print(doc.splitlines()[0])
        print()
    rows = describe(module.Config)
    width = max(len(r[0]) for r in rows)
    for name, tp, default, help_text in rows:
        print(f"  {name:<{width}}  {tp}  = {_format_default(default)}")
        if help_text:
            print(f"  {'':<{width}}    {help_text}")
    return 0


#: the libraries' own switches for their bars (huggingface_hub's also turns off transformers' "Loading weights"
#: and "Writing model shards"), read when each is imported; TQDM_DISABLE sets tqdm's default (mining's similarity
#: bar, datasets' "Filter")
BAR_SWITCHES = ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS", "TQDM_DISABLE")


def _no_bars_in_a_log_file() -> None:
    """In a log file (``> run.log 2>&1``, nohup, Slurm, CI) the libraries' progress bars are every redraw kept, so
    the run sets their switches before it imports them, unless the user set them; the run prints lines instead."""
    from contrastkit.plugins.report import progress_bars

    if not progress_bars():
        for name in BAR_SWITCHES:
            os.environ.setdefault(name, "1")


def cmd_run(args: argparse.Namespace) -> int:
    from contrastkit.plugins.config import resolve
    from contrastkit.plugins.values import parse_overrides
    from contrastkit.recipes import load_recipe

    _no_bars_in_a_log_file()

    module = load_recipe(args.recipe)
    overrides = parse_overrides(args.overrides)
    cfg = resolve(module.Config, config=args.config, **overrides)
    result = module.run(cfg)
    from contrastkit.plugins.device import is_main_process

    if is_main_process() and result is not None:
        out = getattr(result, "output_dir", None)
        if out:
            print(f"done: {out}")
    return 0


def cmd_cp(args: argparse.Namespace) -> int:
    from contrastkit.recipes import recipe_source

    src = recipe_source(args.recipe)
    dest = Path(args.dest)
    if dest.is_dir():
        dest = dest / src.name
    elif args.dest.endswith(("/", os.sep)):  # Path() drops the slash: the user meant a folder
        raise UserError(f"folder '{args.dest}' does not exist; create it first, or give a file name ending in .py")
    if dest.suffix != ".py":  # 'contrastkit run' reads a recipe file as a Python module
        raise UserError(f"'{dest}' does not end in .py, and 'contrastkit run' runs recipe files that do; name it "
                        f"e.g. {dest.with_suffix('.py')}")
    if dest.exists() and not args.force:
        raise UserError(f"'{dest}' already exists; pass --force to overwrite it or choose another name")
    if not dest.parent.exists():
        raise UserError(f"folder '{dest.parent}' does not exist; create it first")
    shutil.copyfile(src, dest)
    print(f"copied {args.recipe} -> {dest}; run it with: contrastkit run {dest if dest.is_absolute() else './' + str(dest)}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from contrastkit.plugins import hub
    from contrastkit.plugins.config import build
    from contrastkit.plugins.values import parse_overrides

    cfg = build(hub.PushConfig, parse_overrides(args.options))
    hub.push(args.output_dir, args.repo_id, cfg)  # prints where it went, or that nothing was committed
    return 0


def cmd_push_demo(args: argparse.Namespace) -> int:
    from contrastkit.plugins import hub
    from contrastkit.plugins.config import build
    from contrastkit.plugins.values import parse_overrides

    cfg = build(hub.PushDemoConfig, parse_overrides(args.options))
    where = hub.push_demo(args.space_id, cfg, dry_run=args.dry_run)
    print(f"{'wrote' if args.dry_run else 'pushed'} demo Space -> {where}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from contrastkit.plugins.config import build
    from contrastkit.plugins.values import parse_overrides

    try:
        from contrastkit.demo import app
    except ImportError as exc:
        raise UserError(f"the demo needs gradio ({exc}); install it with pip install 'contrastkit[demo]'") from None
    cfg = build(app.DemoConfig, parse_overrides(args.options))
    app.launch(cfg)
    return 0


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are UserErrors, so main() prints them as one line, not usage + error."""

    commands: tuple[str, ...] = ()  # the top-level parser's subcommands, for "did you mean"

    def error(self, message: str) -> NoReturn:
        """Raise argparse's complaint as a UserError that names the fix."""
        unknown = re.match(r"argument COMMAND: invalid choice: '([^']*)'", message)
        if unknown:
            raise UserError(f"unknown command '{unknown[1]}'.{did_you_mean(unknown[1], self.commands)} "
                            f"Use one of: {', '.join(self.commands)}; see '{self.prog} --help'")
        raise UserError(f"{message}; see '{self.prog} --help'")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept separate so tests can check every command's --help)."""
    parser = _Parser(
        prog="contrastkit",
        description="One-line contrastive training recipes for text, images and image-text.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("list", help="list the recipes, each with a one-line description")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="show every config field of a recipe with its default and help")
    p.add_argument("recipe", help="recipe name (see 'list') or path to a copied recipe .py")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("run", help="run a recipe: values from --config are overridden by key=value",
                       description="Run a recipe. Values from --config FILE.yaml (each file on top of the one "
                                   "before) are overridden by key=value pairs. 'contrastkit show RECIPE' lists the "
                                   "keys.")
    p.add_argument("recipe", help="recipe name (see 'list') or path to a copied recipe .py")
    p.add_argument("--config", "-c", metavar="FILE.yaml", action="append",
                   help="YAML file with config values; give it again to layer files, later ones winning")
    # default=[] on every key=value list: without it Python < 3.13 names "key=value" among missing arguments
    p.add_argument("overrides", nargs="*", default=[], metavar="key=value", help="config overrides, e.g. epochs=2")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("cp", help="copy a recipe's module out so you can change it")
    p.add_argument("recipe", help="recipe name")
    p.add_argument("dest", help="destination file or folder")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_cp)

    p = sub.add_parser("push", help="push a trained output folder to the Hugging Face Hub",
                       description="Push OUTPUT_DIR to REPO_ID in one commit. Options: private=true, "
                                   "revision=BRANCH, commit_message=TEXT, create_pr=true (a pull request "
                                   "instead of a commit), token=TOKEN. The token comes from HF_TOKEN "
                                   "or 'hf auth login'.")
    p.add_argument("output_dir", help="a folder written by 'contrastkit run'")
    p.add_argument("repo_id", help="Hub repo id, e.g. user/my-model")
    p.add_argument("options", nargs="*", default=[], metavar="key=value",
                   help="private=true revision=BRANCH commit_message=... create_pr=true token=...")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("push-demo", help="create a Gradio Space that runs the similarity demo",
                       description="Create a Gradio Space for model=REPO_ID [compare_to=REPO_ID]. Options: "
                                   "private=true, title=TEXT, out_dir=FOLDER (with --dry-run), and what the "
                                   "Space installs: wheel=FILE or package=REQUIREMENT (default: a wheel built "
                                   "from this checkout).")
    p.add_argument("space_id", help="Space repo id, e.g. user/my-demo (with --dry-run, out_dir= picks the folder)")
    p.add_argument("options", nargs="*", default=[], metavar="key=value", help="model=REPO_ID compare_to=REPO_ID ...")
    p.add_argument("--dry-run", action="store_true", help="write the Space folder locally instead of pushing")
    p.set_defaults(func=cmd_push_demo)

    p = sub.add_parser("demo", help="open the Gradio similarity demo (base vs fine-tuned)",
                       description="Open the similarity demo. Options: model=PATH_OR_ID "
                                   "compare_to=PATH_OR_ID port=7860 host=127.0.0.1 share=false "
                                   "max_upload_mb=10 trust_remote_code=false precision=auto cpu_threads=1 "
                                   "(defaults shown).")
    p.add_argument("options", nargs="*", default=[], metavar="key=value", help="model=... compare_to=... port=7860")
    p.set_defaults(func=cmd_demo)
    parser.commands = tuple(sub.choices)
    return parser


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line; bad input raises UserError."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help"):  # argparse would only miss COMMAND
        raise UserError(f"unknown option '{argv[0]}' before the command; options follow it, e.g. 'contrastkit run "
                        f"text --config FILE.yaml'; see '{parser.prog} --help'")
    # key=value pairs may follow options such as --config; argparse leaves those as "unknown"
    args, extra = parser.parse_known_args(argv)
    rest_field = "overrides" if hasattr(args, "overrides") else "options" if hasattr(args, "options") else None
    stray = [e for e in extra if e.startswith("-") or "=" not in e or rest_field is None]
    if stray:
        # --epochs=2 or --epochs 2 means epochs=2, where the command takes key=value
        dashed = next((e[2:] for e in stray if e.startswith("--") and len(e) > 2), None) if rest_field else None
        fix = (f"write options as key=value, e.g. {dashed if '=' in dashed else dashed + '=VALUE'}" if dashed
               else f"see '{parser.prog} {args.command} --help'")
        raise UserError(f"unrecognized arguments: {' '.join(stray)}; {fix}")
    if extra:
        setattr(args, rest_field, [*getattr(args, rest_field), *extra])
    return args


def _report(exc: UserError) -> int:
    """Print bad input's one line and return its exit code: the one place the CLI reports an error. Under a launcher
    (torchrun, accelerate, Lightning's own processes) every process meets the same bad input, so only each machine's
    first process prints it; the others still exit with its code, which the launcher's summary lists."""
    if os.environ.get("LOCAL_RANK", "0") == "0":
        print(f"contrastkit: error: {exc}", file=sys.stderr)
    return exc.exit_code


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code (2 for bad input)."""
    try:
        args = _parse(argv)
    except UserError as exc:
        return _report(exc)
    from contrastkit.plugins import run

    try:
        return args.func(args)
    except UserError as exc:
        return _report(exc)
    except BrokenPipeError:  # e.g. `contrastkit show text | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt as exc:  # every recipe's Ctrl-C ends here (the image recipe re-raises Lightning's)
        said = str(exc)  # a recipe's run words it while it still knows its folder (run.cleans_up_refusals)
        print(said if said.startswith("contrastkit: ") else f"contrastkit: {run.interrupted_message()}",
              file=sys.stderr)
        return 130
    except Exception as exc:  # a realistic fault mid-run (e.g. a full disk) is one line; anything else is a bug
        fault = run.as_user_error(exc)
        if fault is None:
            raise
        return _report(fault)
    finally:
        run.end(failed=True)  # no-op after a finished run; else drops the folder's lock


if __name__ == "__main__":
    sys.exit(main())
