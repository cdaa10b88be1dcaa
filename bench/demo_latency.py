"""Latency of a two-text compare in the demo: p50 / p95 through gradio_client against the running app.

Starts ``contrastkit demo`` on 127.0.0.1 (a free port) in a subprocess, warms it up, then times
``/compare_texts`` calls (different texts each time, so nothing is cached). For scale it also times
the same compare as a plain function call in this process, and a do-nothing Gradio app (the
framework's own round trip), side by side. Target: p50 <= 30 ms on
the CPU after warm-up.

    python bench/demo_latency.py [--model PATH] [--compare-to PATH] [--cpu-threads 1] [--calls 100]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

SUBJECTS = ["pasta", "bread", "rice", "the router", "a bicycle", "tomatoes", "my laptop", "coffee", "a tent", "soup"]


def texts(i: int) -> tuple[str, str]:
    a, b = SUBJECTS[i % len(SUBJECTS)], SUBJECTS[(i * 7 + 3) % len(SUBJECTS)]
    return f"How do I look after {a}? (question {i})", f"Tips for taking care of {b}, part {i}."


def percentiles(ms: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return statistics.median(ms), q[94]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ECHO_APP = ("import sys, gradio as gr; gr.Interface(lambda a, b: a, ['text', 'text'], 'text', api_name='echo')"
            ".launch(server_name='127.0.0.1', server_port=int(sys.argv[1]))")


def start_app(options: list[str], port: int, echo: bool = False) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "contrastkit.recipes", "demo", f"port={port}", *options]
    if echo:  # Gradio's own floor: an app whose function does nothing
        cmd = [sys.executable, "-c", ECHO_APP, str(port)]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def connect(port: int, proc: subprocess.Popen, timeout: float = 300):
    from gradio_client import Client

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the demo exited early:\n{proc.stderr.read()}")
        try:
            return Client(f"http://127.0.0.1:{port}/", verbose=False)
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(1)
    sys.exit("the demo did not start in time")


def time_calls(fn, calls: int, warmup: int) -> list[float]:
    for i in range(warmup):
        fn(*texts(10_000 + i))
    out = []
    for i in range(calls):
        start = time.perf_counter()
        fn(*texts(i))
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="fine-tuned model (default: the newest run under outputs/)")
    parser.add_argument("--compare-to", help="base model (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--cpu-threads", type=int, default=1, help="the demo's cpu_threads option")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    options = [f"model={args.model}"] * bool(args.model) + [f"compare_to={args.compare_to}"] * bool(args.compare_to)
    options.append(f"cpu_threads={args.cpu_threads}")

    port = free_port()
    proc = start_app(options, port)
    try:
        client = connect(port, proc)
        served = time_calls(lambda a, b: client.predict(a, b, api_name="/compare_texts"), args.calls, args.warmup)
        html = client.predict(*texts(0), api_name="/compare_texts")
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    port = free_port()
    proc = start_app([], port, echo=True)
    try:
        client = connect(port, proc)
        floor = time_calls(lambda a, b: client.predict(a, b, api_name="/echo"), args.calls, args.warmup)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    import torch
    from contrastkit.demo import app, core, render

    cfg = app.DemoConfig(model=args.model, compare_to=args.compare_to, cpu_threads=args.cpu_threads)
    slots, _ = app.load_slots(cfg)
    if cfg.cpu_threads:
        torch.set_num_threads(cfg.cpu_threads)  # the same setting as the served app
    direct = time_calls(lambda a, b: render.scores_table(core.compare_texts(slots, a, b), slots),
                        args.calls, args.warmup)

    models = ", ".join(f"{s.role}={s.name}" for s in slots if s.model is not None)
    print(f"models: {models}  (torch threads: {torch.get_num_threads()}, CPUs: {os.cpu_count()})")
    print(f"{args.calls} two-text compares after {args.warmup} warm-up calls; both models score every pair")
    print(f"{'path':<34}{'p50 ms':>9}{'p95 ms':>9}")
    for name, ms in (("gradio_client -> running app", served), ("plain function (no server)", direct),
                     ("gradio_client -> echo app (floor)", floor)):
        p50, p95 = percentiles(ms)
        print(f"{name:<34}{p50:>9.1f}{p95:>9.1f}")
    p50 = percentiles(served)[0]
    print(f"served / plain: {p50 / percentiles(direct)[0]:.1f}x; Gradio's floor is {percentiles(floor)[0]:.1f} ms; "
          f"target p50 <= 30 ms: {'met' if p50 <= 30 else 'NOT met'}")
    assert 'data-model="base"' in html, "the app answered without scores"


if __name__ == "__main__":
    main()
