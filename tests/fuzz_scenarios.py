"""Fuzz the scenario loader with mutated shipped scenarios: every bad file must give one ScenarioError line.

Each case takes a shipped file (``scenarios/**/*.yaml``) and mutates it, either as text (flip, insert or
delete bytes; duplicate, drop or swap lines; re-encode) or as data (replace a value anywhere in the document
by an adversarial one: non-finite and huge numbers, wrong types, path-like names, deep nesting, aliases),
then checks it the way ``ecosim validate`` does: load the scenario or the sweep design, expand the design,
read an edge list. Anything raised other than ``ScenarioError`` or ``NetworkError`` is a finding, printed
with its traceback::

    python tests/fuzz_scenarios.py --seconds 120          # prints files tried and tracebacks found

The test suite runs the same mutations briefly through hypothesis (tests/test_hardening.py).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecosystem.network import NetworkError, read_edge_list  # noqa: E402
from ecosystem.scenario import EdgeListNet, ScenarioError, SweepSpec, load_scenario  # noqa: E402

SHIPPED = sorted((ROOT / "scenarios").rglob("*.yaml"))
EVIL = [
    float("inf"), float("-inf"), float("nan"), 10**9, 10**18, 2**64, -1, 0, 1e308, 1e-320, True, False, None,
    "", ".", "..", "../../x", "/tmp/x", "a" * 300, "a\x00b", "a\nb", "7", "7.0", 7.0, [], {}, [[[[[]]]]],
    {"kind": "edge_list", "path": "/dev/zero"}, {"kind": "complete"}, [1, 2, 3], "é", "\ud800",
]
EXPECTED = (ScenarioError, NetworkError)
# Seven levels of ten aliases each: 10**7 values written in a few lines ("billion laughs").
BOMB = "[&l0 [" + ", ".join(["x"] * 10) + "], " + ", ".join(
    f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 7)) + "]"


def leaves(node: object, path: tuple = ()) -> list[tuple]:
    """Paths to every value in a YAML document (keys of mappings, indices of lists)."""
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += leaves(v, (*path, i))
    return out


def set_at(node: object, path: tuple, value: object) -> object:
    if not path:
        return value
    node[path[0]] = set_at(node[path[0]], path[1:], value)  # type: ignore[index]
    return node


def mutate_data(text: str, rng: random.Random) -> bytes:
    """Replace one value (or key) of the document by an adversarial one."""
    data = yaml.safe_load(text)
    path = rng.choice(leaves(data))
    choice = rng.random()
    if choice < 0.6:
        value = rng.choice(EVIL)
    elif choice < 0.8:  # a deep or aliased structure
        value = "DEEP"
    else:  # a duplicated key, written as text below
        value = "DUP"
    if value in ("DEEP", "DUP") or (isinstance(value, str) and "\ud800" in value):
        body = yaml.safe_dump(set_at(data, path, "@@HOLE@@") if path else data, sort_keys=False)
        if value == "DEEP":
            depth = rng.randint(20, 3000)
            fill = rng.choice(["[" * depth + "]" * depth, BOMB])
        elif value == "DUP":
            fill = "1\nseed: 2\nseed: 3"
        else:
            fill = '"\\ud800"'
        return body.replace("'@@HOLE@@'", fill).encode("utf-8", "surrogatepass")
    return yaml.safe_dump(set_at(data, path, value), sort_keys=False, allow_unicode=True).encode(
        "utf-8", "surrogatepass")


def mutate_text(text: str, rng: random.Random) -> bytes:
    """Byte and line edits, and other encodings."""
    raw = bytearray(text.encode())
    lines = text.splitlines(keepends=True)
    kind = rng.randrange(7)
    if kind == 0 and raw:  # flip bytes
        for _ in range(rng.randint(1, 8)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        return bytes(raw)
    if kind == 1:  # insert random bytes
        at = rng.randrange(len(raw) + 1)
        return bytes(raw[:at]) + rng.randbytes(rng.randint(1, 16)) + bytes(raw[at:])
    if kind == 2 and lines:  # duplicate a line (duplicate keys)
        i = rng.randrange(len(lines))
        return "".join(lines[: i + 1] + lines[i:]).encode()
    if kind == 3 and lines:  # drop a line
        i = rng.randrange(len(lines))
        return "".join(lines[:i] + lines[i + 1 :]).encode()
    if kind == 4 and len(lines) > 1:  # swap two lines
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        return "".join(lines).encode()
    if kind == 5:  # another encoding
        return text.encode(rng.choice(["utf-16", "utf-16-le", "utf-32", "latin-1"]), "replace")
    return bytes(raw[: rng.randrange(len(raw) + 1)])  # truncate


def mutate(path: Path, rng: random.Random) -> bytes:
    text = path.read_text()
    return (mutate_data if rng.random() < 0.6 else mutate_text)(text, rng)


def check(path: Path) -> None:
    """What ``ecosim validate`` does with a file, minus the printing."""
    try:
        data = yaml.safe_load(path.read_bytes())
    except Exception:
        data = None
    if isinstance(data, dict) and (data.get("sweep") is not None or data.keys() & {"base", *SweepSpec.model_fields}):
        from ecosystem.design import expand, load_design

        scenarios = [run.scenario for run in expand(load_design(path))]
    else:
        scenarios = [load_scenario(path)]
    for s in scenarios[:3]:
        if isinstance(s.network, EdgeListNet):
            read_edge_list(Path(s.network.path), s.developers.count)


def one_case(source: Path, rng: random.Random, folder: Path) -> tuple[str, str | None]:
    """Check one mutated file; returns (outcome, traceback or None)."""
    target = folder / source.name
    target.write_bytes(mutate(source, rng))
    try:
        check(target)
    except EXPECTED as err:
        message = str(err)
        if "\n" in message or not message:
            return "bad message", f"{type(err).__name__}: {message!r}"
        return "refused", None
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt):
            raise
        return "traceback", traceback.format_exc()
    return "accepted", None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="ecosim-fuzz-"))
    for source in SHIPPED:  # relative edge-list paths and sweep bases resolve beside the copies
        (folder / source.name).write_bytes(source.read_bytes())
    counts: Counter[str] = Counter()
    findings: dict[str, str] = {}
    deadline = time.monotonic() + args.seconds
    try:
        while time.monotonic() < deadline:
            outcome, detail = one_case(rng.choice(SHIPPED), rng, folder)
            counts[outcome] += 1
            if detail is not None:
                findings.setdefault(detail.strip().splitlines()[-1], detail)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    total = sum(counts.values())
    print(f"{total} mutated files in {args.seconds:.0f} s: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for detail in findings.values():
        print("-" * 100)
        print(detail)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
