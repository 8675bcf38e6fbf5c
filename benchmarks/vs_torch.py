"""wgan_jax against its PyTorch reference: generator iterations/s, interleaved.

    python benchmarks/vs_torch.py [--archs toy,mnist,cifar] [--rounds 5] [--steps S]
        [--batch B] [--n_critic 5] [--precisions float32,bfloat16]
    bash benchmarks/vs_torch.sh [same options]

For each arch, two worker processes, one per framework, build the gp-mode step of the same
config (`step_throughput.method_config`: official batch sizes 256 / 50 / 64, Adam(1e-4, 0.5,
0.9), lambda 10, 0.1 on the toy, n_critic 5) from the same initial weights: wgan_jax's compiled
step (`compute_dtype` float32 / bfloat16) and `benchmarks/torch_reference.py` in eager mode
(float32 / `torch.autocast` bfloat16). Each worker first compiles or warms up every precision;
then each round runs `--steps` generator iterations of every (framework, precision) in turn,
after one warm-up iteration, while the other worker waits on its pipe (no two ever run at
once); the order rotates between rounds. Prints each variant's per-round rates, then the
table (medians), the compile times (wgan_jax: lower + compile of the step; torch, which has
nothing to compile: its first iteration, where oneDNN builds its kernels), and a 2048^2
float32 and bfloat16 matmul timed in each worker as a reference for the machine's state.
Needs the `torchref` extra (torch) besides wgan_jax's own dependencies.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The archs benchmarks/torch_reference.py implements (kept equal to its ARCHS by a test).
ARCHS = ("toy", "mnist", "cifar", "resnet32")
PRECISIONS = ("float32", "bfloat16")
FRAMEWORKS = ("jax", "torch")
# generator iterations per round: a few seconds each on 2 cores
STEPS = {"toy": 20, "mnist": 2, "cifar": 1, "resnet32": 1}
HEADER = ("| arch | wgan_jax f32 | wgan_jax bf16 | torch f32 | torch autocast bf16 | f32 ratio "
          "| best vs best | wgan_jax compile s (f32 / bf16) | torch first iteration s "
          "(f32 / bf16) |\n|---|---|---|---|---|---|---|---|---|")
INSTALL = ("error: the PyTorch reference needs torch: pip install -e '.[torchref]' (a CPU "
           "build is enough: add --extra-index-url https://download.pytorch.org/whl/cpu)")


def _csv(choices, what):
    def parse(text):
        items = tuple(t for t in text.split(",") if t)
        bad = [t for t in items if t not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"{what} must be from {choices}, got {text!r}")
        return items
    return parse


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # the message names the option; exit status 2 as argparse's
        self.print_usage(sys.stderr)
        raise SystemExit(f"error: {message}")


def parse_args(argv=None):
    p = _Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", type=_csv(ARCHS, "arch"), default=None,
                   help=f"default: those of {ARCHS} that step_throughput.py has settings for")
    p.add_argument("--precisions", type=_csv(PRECISIONS, "precision"), default=PRECISIONS)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=None,
                   help=f"generator iterations per round (default per arch: {STEPS})")
    p.add_argument("--batch", type=int, default=None, help="batch size (default: official)")
    p.add_argument("--n_critic", type=int, default=5)
    p.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sys.path.insert(0, ROOT)
    from benchmarks.step_throughput import DEFAULT_BATCH

    known = tuple(a for a in ARCHS if a in DEFAULT_BATCH)
    missing = [a for a in args.archs or () if a not in known]
    if missing:
        raise SystemExit(f"error: arch {missing[0]!r}: benchmarks/step_throughput.py has no "
                         "official settings for it yet (DEFAULT_BATCH, method_config); the "
                         f"benchmark runs {known}")
    args.archs = args.archs or known
    if args.rounds < 1 or (args.steps is not None and args.steps < 1) or args.n_critic < 1:
        raise SystemExit("error: --rounds, --steps and --n_critic must be >= 1")
    return args


# ------------------------------------------------------------------------------- workers

class _JaxRunner:
    def __init__(self, args, arch):
        sys.path.insert(0, ROOT)
        import jax

        from benchmarks.step_throughput import build, matmul_peak_gflops

        self.jax, self.runs, self.setup = jax, {}, {}
        for precision in args.precisions:
            state, batches, step = build(arch, "gp", args.batch, None, n_critic=args.n_critic,
                                         compute_dtype=precision)
            t0 = time.perf_counter()
            compiled = step.lower(state, batches[0]).compile()
            self.setup[precision] = time.perf_counter() - t0
            self.runs[precision] = [compiled, state, batches]
            self.run(precision, 1)
        self.matmul = {p: {"n": 2048, "gflops": round(matmul_peak_gflops(dtype), 2)}
                       for p, dtype in (("float32", jax.numpy.float32),
                                        ("bfloat16", jax.numpy.bfloat16))}

    def run(self, precision, steps):
        compiled, state, batches = self.runs[precision]
        for i in range(steps):
            state, metrics = compiled(state, batches[i % 2])
        self.jax.block_until_ready((state, metrics))
        self.runs[precision][1] = state


class _TorchRunner:
    def __init__(self, args, arch):
        import torch

        sys.path.insert(0, ROOT)
        from benchmarks import torch_reference as tr
        from benchmarks.step_throughput import method_config
        from wgan_jax.method import Method

        self.torch, self.runs, self.setup = torch, {}, {}
        method = Method.from_config(method_config(arch, "gp", args.batch, args.n_critic))
        state = method.init_state()
        data = tuple(state.models.data_shape)  # NHWC images -> NCHW; toy points as they are
        shape = (method.n_critic, method.batch_size) + (data[-1:] + data[:-1] if len(data) == 3
                                                         else data)
        gen = torch.Generator().manual_seed(0)
        batches = [torch.rand(shape, generator=gen) * 2 - 1 for _ in range(2)]
        for precision in args.precisions:
            self.runs[precision] = (tr.TorchWGANGP.from_method(method, state, precision),
                                    batches)
            t0 = time.perf_counter()
            self.run(precision, 1)
            self.setup[precision] = time.perf_counter() - t0
            self.run(precision, 1)
        self.matmul = {"float32": self._matmul(torch.float32),
                       "bfloat16": self._matmul(torch.bfloat16)}

    def run(self, precision, steps):
        ref, batches = self.runs[precision]
        for i in range(steps):
            ref.train_step(batches[i % 2])

    def _matmul(self, dtype):
        """GFLOP/s of an n x n matmul, best of 3: n = 2048, or smaller where the calls are slow
        (PyTorch's bfloat16 matmul on a CPU without bf16 dot units runs at ~0.2 GFLOP/s)."""
        n = 256
        while True:
            a = self.torch.randn(n, n).to(dtype)
            t0 = time.perf_counter()
            self.torch.mm(a, a)
            if n >= 2048 or (time.perf_counter() - t0) * 8 > 1.0:
                break
            n *= 2
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            self.torch.mm(a, a)
            best = min(best, time.perf_counter() - t0)
        return {"n": n, "gflops": round(2 * n ** 3 / best / 1e9, 2)}


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        print(INSTALL, file=sys.stderr)
        raise SystemExit(2) from None


def worker(args) -> None:
    """Serve one framework's step over stdin/stdout: JSON lines (`{"run": precision, "steps":
    n}` -> `{"rate": gen_iters_per_s}`; `{"quit": true}` ends)."""
    # Protocol lines go to the original stdout; anything a library prints goes to stderr.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    (arch,) = args.archs
    runner = (_JaxRunner if args.worker == "jax" else _TorchRunner)(args, arch)
    info = {"setup_s": runner.setup, "matmul_gflops": runner.matmul}
    if args.worker == "torch":
        info.update(torch=runner.torch.__version__, threads=runner.torch.get_num_threads())
    else:
        info.update(jax=runner.jax.__version__)
    print(json.dumps(info), file=proto)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("quit"):
            return
        runner.run(cmd["run"], 1)  # warm-up: caches and thread pools after the other's turn
        t0 = time.perf_counter()
        runner.run(cmd["run"], cmd["steps"])
        print(json.dumps({"rate": cmd["steps"] / (time.perf_counter() - t0)}), file=proto)


class _Worker:
    def __init__(self, framework, args, arch):
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", framework, "--archs", arch,
               "--precisions", ",".join(args.precisions), "--n_critic", str(args.n_critic)]
        if args.batch:
            cmd += ["--batch", str(args.batch)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
        self.name = framework
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=ROOT, env=env)

    def ask(self, msg=None) -> dict:
        if msg is not None:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise SystemExit(code if code == 2 else
                             f"error: the {self.name} worker stopped (exit status {code}); "
                             "its messages are above")
        return json.loads(line)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


# ------------------------------------------------------------------------------- the table

def summarize(arch: str, rates: dict, setup: dict) -> dict:
    """Medians of the per-round rates of each (framework, precision), the float32 ratio
    (wgan_jax / torch) and best vs best (each framework's faster precision)."""
    med = {k: statistics.median(v) for k, v in rates.items() if v}
    f32 = [med.get((f, "float32")) for f in FRAMEWORKS]
    best = [max((r for (f, _), r in med.items() if f == fw), default=None)
            for fw in FRAMEWORKS]
    return {"arch": arch, "medians": med, "setup": setup,
            "f32_ratio": f32[0] / f32[1] if None not in f32 else None,
            "best_vs_best": best[0] / best[1] if None not in best else None}


def table_row(row: dict) -> str:
    """One markdown row under `HEADER`."""
    def rate(fw, p):
        r = row["medians"].get((fw, p))
        return "" if r is None else f"{r:.3f}"

    def ratio(x):
        return "" if x is None else f"{x:.2f}"

    def setup(fw):
        s = row["setup"].get(fw, {})
        return " / ".join(f"{s[p]:.1f}" if p in s else "-" for p in PRECISIONS)

    cells = [row["arch"], rate("jax", "float32"), rate("jax", "bfloat16"),
             rate("torch", "float32"), rate("torch", "bfloat16"), ratio(row["f32_ratio"]),
             ratio(row["best_vs_best"]), setup("jax"), setup("torch")]
    return "| " + " | ".join(cells) + " |"


def _machine() -> str:
    model, flags = platform.processor() or "?", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("?", "x86_64", ""):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    bf16 = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return (f"{model}, {os.cpu_count()} logical CPUs, bf16 dot units: "
            f"{', '.join(bf16) if bf16 else 'none (AVX2-class)'}")


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        if len(args.archs) != 1:
            raise SystemExit("error: a worker serves one arch")
        if args.worker == "torch":
            _require_torch()
        return worker(args)
    print(f"machine: {_machine()}; python {platform.python_version()}", flush=True)
    table = [f"gp mode, batch {args.batch or 'official'}, n_critic {args.n_critic}, generator "
             f"iterations/s (median of {args.rounds} rounds)", HEADER]
    for arch in args.archs:
        steps = args.steps or STEPS[arch]
        workers = {fw: _Worker(fw, args, arch) for fw in FRAMEWORKS}
        try:
            info = {fw: w.ask() for fw, w in workers.items()}
            for fw, i in info.items():
                print(f"{arch} {fw}: {json.dumps(i)}", flush=True)
            variants = [(fw, p) for p in args.precisions for fw in FRAMEWORKS]
            rates = {v: [] for v in variants}
            for r in range(args.rounds):
                for fw, p in variants[r % len(variants):] + variants[:r % len(variants)]:
                    rates[(fw, p)].append(workers[fw].ask({"run": p, "steps": steps})["rate"])
            for (fw, p), rs in rates.items():
                print(f"{arch} {fw} {p}: gen_iters_per_s "
                      f"{' '.join(f'{x:.3f}' for x in rs)}", flush=True)
        finally:
            for w in workers.values():
                w.close()
        table.append(table_row(summarize(arch, rates,
                                         {fw: i["setup_s"] for fw, i in info.items()})))
        print("\n" + "\n".join(table) + "\n", flush=True)  # the table so far, after each arch


if __name__ == "__main__":
    main()
