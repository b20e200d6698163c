"""One training step of N tiny transformer LMs: batched over developers vs one model at a time.

For N = 8, 64, 256 (and 1024 on a GPU) and two model sizes, times one AdamW step of every developer with
the batched family (stacked weights, ``Trainer``) and with the plain loop over N ``nn.Module``s with N
optimizers (``tests/reference/gpt.py``'s ``Loop``, the tests' independent reference, with torch's fused
attention as nanoGPT uses it), in the same run and on the same data. Prints the time per step, tokens/s,
achieved GFLOP/s against the float32 matmul ceiling measured in this run, the peak memory of each, and the
speedups as the last line.

    python benchmarks/train_batched.py [--quick] [--device cpu|cuda] [--blocks 8,16,32]

The modes' steps are interleaved (batched, loop, batched, fused loop, ...) so that other processes sharing
the cores disturb them alike; the table gives each mode's fastest step (as ``timeit`` advises) and the
speedup is the median over rounds of the ratio of a loop step to the batched step taken just before it
(robust to the machine's speed drifting during the run). On CPU each mode's
peak memory is measured in a forked child, before this process has allocated anything big: the growth of
its resident set while it builds the trainer (weight copies, AdamW state) and takes two steps.

FLOPs per token follow Kaplan et al. 2020 / Chowdhery et al. 2022 (PaLM, appendix B): 6 per weight of the
matmuls (forward and backward) plus 12·L·T·C for attention; embedding lookups count nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests.reference

from ecosystem.families.transformer import Trainer, TransformerFamily, TransformerState, parameter_count
from ecosystem.scenario import TrainSpec, TransformerFamilySpec
from tests.reference.gpt import GPTConfig, Loop

VOCAB = 720  # with d_model 32 and one layer: 59k weights per developer


@dataclass(frozen=True)
class Size:
    name: str
    spec: TransformerFamilySpec
    seq_len: int
    batch: int

    def flops_per_token(self) -> float:
        c, layers = self.spec.d_model, self.spec.layers
        matmul_weights = layers * 12 * c * c + c * VOCAB
        return 6 * matmul_weights + 12 * layers * self.seq_len * c


SIZES = (
    Size("tiny d32 L1 H2", TransformerFamilySpec(d_model=32, layers=1, heads=2), seq_len=16, batch=8),
    Size("larger d64 L2 H4", TransformerFamilySpec(d_model=64, layers=2, heads=4), seq_len=16, batch=8),
)


@dataclass(frozen=True)
class Setup:
    """One model size, one N, on one device: the family, initial weights and a batch of tokens."""

    size: Size
    n: int
    device: torch.device

    def build(self) -> tuple[TransformerFamily, TransformerState, torch.Tensor]:
        family = TransformerFamily(self.size.spec, VOCAB, self.size.seq_len, TrainSpec(steps=1), self.device)
        generator = torch.Generator(self.device).manual_seed(self.n)
        state = family.init(self.n, generator)
        shape = (self.n, self.size.batch, self.size.seq_len)
        return family, state, torch.randint(0, VOCAB, shape, generator=generator, device=self.device)


def make_trainer(family: TransformerFamily, state: TransformerState, mode: str) -> Trainer | Loop:
    """``batched`` (the family's own block size), ``batched/<block size>``, ``loop`` (torch's default AdamW
    per model) or ``loop/fused``."""
    if mode.startswith("loop"):
        spec = family.spec
        config = GPTConfig(family.vocab_size, family.seq_len, spec.d_model, spec.layers, spec.heads, flash=True)
        weights = [{k: v[i] for k, v in state.tensors().items()} for i in range(state.n)]
        return Loop(config, weights, family.train.lr, fused=mode == "loop/fused")
    if "/" in mode:
        family.block = int(mode.split("/")[1])
    return Trainer(family, state)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_ceiling(device: torch.device, size: int = 2048, repeats: int = 10) -> float:
    """Best float32 GFLOP/s of a square matmul on this device (TF32 off: a true float32 ceiling)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def _status_kib(field: str) -> int:
    lines = Path("/proc/self/status").read_text().splitlines()
    return int(next(line.split()[1] for line in lines if line.startswith(field + ":")))


def peak_memory_mib(setup: Setup, mode: str) -> float:
    """MiB a mode adds to the weights while it builds its trainer and takes two steps.

    After a warm-up with one developer. CPU: in a forked child (Linux), the growth of the peak resident set;
    writing 5 to clear_refs resets the peak. CUDA: the growth of the allocator's peak, in this process.
    """
    warm = Setup(setup.size, 1, setup.device)  # the libraries' own first-use memory is not the mode's
    if setup.device.type == "cuda":
        make_trainer(*warm.build()[:2], mode).step(warm.build()[2])  # cuBLAS workspace, lazy start-up
        family, state, tokens = setup.build()
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated(setup.device)
        torch.cuda.reset_peak_memory_stats(setup.device)
        trainer = make_trainer(family, state, mode)
        trainer.step(tokens)
        trainer.step(tokens)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated(setup.device) - base
        del trainer
        torch.cuda.empty_cache()
        return peak / 2**20
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: measure and leave without running the parent's cleanup
        make_trainer(*warm.build()[:2], mode).step(warm.build()[2])
        family, state, tokens = setup.build()
        Path("/proc/self/clear_refs").write_text("5")
        base = _status_kib("VmRSS")
        trainer = make_trainer(family, state, mode)
        trainer.step(tokens)
        trainer.step(tokens)
        os.write(write, struct.pack("d", (_status_kib("VmHWM") - base) / 1024))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return struct.unpack("d", data)[0]


def time_modes(
    setup: Setup, modes: list[str], repeats: int
) -> tuple[dict[str, list[float]], dict[tuple[str, str], list[float]]]:
    """Seconds of each mode's steps, after a warm-up round, and of each batched mode's step taken just before
    each loop mode's: every round runs the batched modes, then one loop mode, and again for the next."""
    family, state, tokens = setup.build()
    trainers = {mode: make_trainer(family, state, mode) for mode in modes}
    batched = [mode for mode in modes if mode.startswith("batched")]
    loops = [mode for mode in modes if mode not in batched]
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    before: dict[tuple[str, str], list[float]] = {(b, loop): [] for b in batched for loop in loops}

    def step(mode: str) -> float:
        sync(setup.device)
        start = time.perf_counter()
        trainers[mode].step(tokens)
        sync(setup.device)
        return time.perf_counter() - start

    for round_ in range(repeats + 1):
        for loop in loops:
            for b in batched:
                seconds = step(b)
                if round_:  # round 0 warms up
                    before[b, loop].append(seconds)
            seconds = step(loop)
            if round_:
                times[loop].append(seconds)
    for b in batched:
        times[b] = [seconds for loop in loops for seconds in before[b, loop]]
    return times, before


def paired_speedup(slow: list[float], fast: list[float]) -> float:
    """Median over rounds of the ratio of two modes' steps taken back to back: robust to the machine's speed
    drifting during the run (other virtual machines on the host), which the ratio of two minima is not."""
    return statistics.median(s / f for s, f in zip(slow, fast, strict=True))


def rounds(n: int, repeats: int) -> int:
    """Timed rounds for N developers: more where steps are short (the median ratio steadies), fewer where a
    loop round takes seconds."""
    return 2 * repeats + 1 if n <= 64 else repeats if n <= 256 else 2


def load_average() -> str:
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 8 and 64, tiny model, fewer repeats")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--blocks", default="", help="developer block sizes to compare, e.g. 8,16,32")
    args = parser.parse_args()
    device = torch.device(args.device)
    counts = [8, 64] if args.quick else [8, 64, 256]
    if device.type == "cuda" and not args.quick:
        counts.append(1024)
    sizes = SIZES[:1] if args.quick else SIZES
    repeats = 3 if args.quick else 7
    batched = [f"batched/{b}" for b in args.blocks.split(",")] if args.blocks else ["batched"]
    modes = [*batched, "loop", "loop/fused"]
    setups = [Setup(size, n, device) for size in sizes for n in counts]

    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {load_average()}")
    memory = [{mode: peak_memory_mib(s, mode) for mode in modes} for s in setups]  # before anything big
    ceiling = matmul_ceiling(device)
    print(f"float32 matmul ceiling: {ceiling:.1f} GFLOP/s (2048x2048); interleaved rounds: "
          + ", ".join(f"{rounds(n, repeats)} at N = {n}" for n in counts))
    header = f"{'model':<17}{'N':>5} {'mode':<11}{'ms/step':>9}{'tok/s':>10}{'GFLOP/s':>9}{'ceil%':>7}{'MiB':>8}"
    speedups = []
    for setup, setup_memory in zip(setups, memory, strict=True):
        size = setup.size
        if setup.n == counts[0]:
            params = parameter_count(size.spec, VOCAB, size.seq_len)
            block = setup.build()[0].block
            print(
                f"\n{size.name}: {params} weights per developer, vocabulary {VOCAB}, batch {size.batch}, "
                f"context {size.seq_len}, blocks of {block} developers"
            )
            print(header)
        times, before = time_modes(setup, modes, rounds(setup.n, repeats))
        tokens = setup.n * size.batch * size.seq_len
        for mode, steps in times.items():
            seconds = min(steps)
            gflops = size.flops_per_token() * tokens / seconds / 1e9
            print(
                f"{size.name:<17}{setup.n:>5} {mode:<11}{seconds * 1e3:>9.2f}{tokens / seconds:>10.0f}"
                f"{gflops:>9.1f}{100 * gflops / ceiling:>6.1f}%{setup_memory[mode]:>8.0f}"
            )
        batched = min((m for m in times if m.startswith("batched")), key=lambda m: min(times[m]))
        speedups.append(
            f"{size.name.split()[0]} N={setup.n}: {paired_speedup(times['loop'], before[batched, 'loop']):.1f}x "
            f"({paired_speedup(times['loop/fused'], before[batched, 'loop/fused']):.1f}x)"
        )
    print(f"\n{load_average()} at the end (other processes share the cores)")
    print("speedup batched vs loop (vs loop/fused): " + ", ".join(speedups))


if __name__ == "__main__":
    main()
