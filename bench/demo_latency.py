"""Served latency of the demo's two-text compare over Gradio's own HTTP API, one client and many at once.

Starts ``contrastkit demo`` on 127.0.0.1 (a free port) in a subprocess, warms it up, then calls
``POST /gradio_api/call/compare_texts`` and reads the answer from the event stream
(``GET /gradio_api/call/compare_texts/{event_id}``), with different texts each time so nothing is cached:

- sequential: one client, ``--calls`` calls one after another (p50, p95);
- concurrent: ``--clients`` clients at once, ``--calls-each`` calls each (p50, p95, errors, calls/s).

The same two rows are measured against a do-nothing Gradio app (the framework's floor), and the compare as a
plain function call in this process. Targets (2 cores): sequential p50 <= 60 ms; 20 clients
p95 <= 500 ms with 0 errors.

    python bench/demo_latency.py [--model PATH] [--compare-to PATH] [--clients 20] [--calls 100]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

SUBJECTS = ["pasta", "bread", "rice", "the router", "a bicycle", "tomatoes", "my laptop", "coffee", "a tent", "soup"]
SEQ_P50_MS, CONC_P95_MS = 60, 500


def texts(i: int) -> tuple[str, str]:
    a, b = SUBJECTS[i % len(SUBJECTS)], SUBJECTS[(i * 7 + 3) % len(SUBJECTS)]
    return f"How do I look after {a}? (question {i})", f"Tips for taking care of {b}, part {i}."


def percentiles(ms: list[float]) -> tuple[float, float]:
    if len(ms) < 2:
        return (ms[0], ms[0]) if ms else (float("nan"), float("nan"))
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


class Api:
    """One HTTP client of a running Gradio app (its own keep-alive connection, like a browser tab)."""

    def __init__(self, port: int, api_name: str):
        import httpx

        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        self.path = f"/gradio_api/call/{api_name}"

    def call(self, *data: str) -> object:
        """POST the inputs, then read the event stream until the result (or raise on an error event)."""
        reply = self.http.post(self.path, json={"data": list(data)})
        reply.raise_for_status()
        event_id = reply.json()["event_id"]
        event = None
        with self.http.stream("GET", f"{self.path}/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    payload = line[5:].strip()
                    if event == "error":
                        raise RuntimeError(f"the app answered an error: {payload}")
                    return json.loads(payload)[0]
        raise RuntimeError(f"the event stream ended without a result (last event: {event})")

    def close(self) -> None:
        self.http.close()


def wait_ready(port: int, proc: subprocess.Popen, api_name: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the app exited early:\n{proc.stderr.read()}")
        try:
            Api(port, api_name).call(*texts(99_999))
            return
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(1)
    sys.exit("the app did not start in time")


def sequential(call, calls: int, warmup: int) -> list[float]:
    for i in range(warmup):
        call(*texts(10_000 + i))
    out = []
    for i in range(calls):
        start = time.perf_counter()
        call(*texts(i))
        out.append((time.perf_counter() - start) * 1000)
    return out


def concurrent(port: int, api_name: str, clients: int, calls_each: int) -> tuple[list[float], int, float]:
    """``clients`` threads, each with its own connection, start together and call ``calls_each`` times."""
    ms: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start_line = threading.Barrier(clients + 1)

    def client(c: int) -> None:
        api = Api(port, api_name)
        start_line.wait()
        for i in range(calls_each):
            start = time.perf_counter()
            try:
                api.call(*texts(20_000 + c * calls_each + i))
                with lock:
                    ms.append((time.perf_counter() - start) * 1000)
            except Exception as exc:  # noqa: BLE001 - counted, not fatal
                with lock:
                    errors.append(str(exc)[:200])
        api.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    start_line.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        print(f"first error: {errors[0]}")
    return ms, len(errors), len(ms) / wall


def measure(port: int, api_name: str, args) -> dict[str, object]:
    api = Api(port, api_name)
    seq = sequential(api.call, args.calls, args.warmup)
    html = api.call(*texts(0))
    api.close()
    conc, errors, rate = concurrent(port, api_name, args.clients, args.calls_each)
    return {"seq": seq, "conc": conc, "errors": errors, "rate": rate, "html": html}


def serve_and_measure(options: list[str], args, echo: bool = False) -> dict[str, object]:
    port = free_port()
    api_name = "echo" if echo else "compare_texts"
    proc = start_app(options, port, echo=echo)
    try:
        wait_ready(port, proc, api_name)
        return measure(port, api_name, args)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="fine-tuned model (default: the newest run under outputs/)")
    parser.add_argument("--compare-to", help="base model (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--cpu-threads", type=int, default=1, help="the demo's cpu_threads option")
    parser.add_argument("--precision", default="auto", help="the demo's precision option (auto, fp32, bf16)")
    parser.add_argument("--calls", type=int, default=100, help="sequential calls")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument("--calls-each", type=int, default=10, help="calls per concurrent client")
    args = parser.parse_args()
    options = [f"model={args.model}"] * bool(args.model) + [f"compare_to={args.compare_to}"] * bool(args.compare_to)
    options += [f"cpu_threads={args.cpu_threads}", f"precision={args.precision}"]

    load_at_start = os.getloadavg()[0]
    served = serve_and_measure(options, args)
    floor = serve_and_measure([], args, echo=True)

    import torch
    from contrastkit.demo import app, core, render

    cfg = app.DemoConfig(model=args.model, compare_to=args.compare_to, cpu_threads=args.cpu_threads,
                         precision=args.precision)
    slots, _ = app.load_slots(cfg)
    if cfg.cpu_threads:
        torch.set_num_threads(cfg.cpu_threads)  # the same setting as the served app
    direct = sequential(lambda a, b: render.scores_table(core.compare_texts(slots, a, b), slots),
                        args.calls, args.warmup)

    models = ", ".join(f"{s.role}={s.name}" for s in slots if s.model is not None)
    print(f"models: {models}  (precision={args.precision}, bf16 autocast: {slots[0].bf16}, "
          f"torch threads: {torch.get_num_threads()}, CPUs: {os.cpu_count()}, "
          f"load average at start {load_at_start:.2f}, before the plain-function run {os.getloadavg()[0]:.2f})")
    print(f"two-text compares over POST /gradio_api/call/<api> + event stream; {args.warmup} warm-up calls; "
          f"sequential: {args.calls} calls; concurrent: {args.clients} clients x {args.calls_each} calls")
    print(f"{'path':<28}{'seq p50':>9}{'seq p95':>9}{'conc p50':>10}{'conc p95':>10}{'errors':>8}{'calls/s':>9}")
    for name, r in (("HTTP API -> demo", served), ("HTTP API -> echo (floor)", floor)):
        s50, s95 = percentiles(r["seq"])
        c50, c95 = percentiles(r["conc"])
        print(f"{name:<28}{s50:>9.1f}{s95:>9.1f}{c50:>10.1f}{c95:>10.1f}{r['errors']:>8}{r['rate']:>9.1f}")
    d50, d95 = percentiles(direct)
    print(f"{'plain function (no server)':<28}{d50:>9.1f}{d95:>9.1f}")
    s50, c95 = percentiles(served["seq"])[0], percentiles(served["conc"])[1]
    print(f"target sequential p50 <= {SEQ_P50_MS} ms: {'met' if s50 <= SEQ_P50_MS else 'NOT met'} ({s50:.1f}); "
          f"{args.clients} clients p95 <= {CONC_P95_MS} ms with 0 errors: "
          f"{'met' if c95 <= CONC_P95_MS and not served['errors'] else 'NOT met'} ({c95:.1f}, {served['errors']} errors)")
    assert 'data-model="base"' in str(served["html"]), "the app answered without scores"


if __name__ == "__main__":
    main()
