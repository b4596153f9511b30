#!/usr/bin/env python3
"""Refreshes the committed corpus of one fuzz target, within a size cap (docs/fuzzing.md).

    python3 fuzz/trim_corpus.py TARGET [MORE_INPUT_DIRS...] [--max-files 200]

Takes the committed corpus `fuzz/corpus/TARGET/` and any other inputs (typically the scratch
corpus a `cargo fuzz run` wrote), minimises them with `cargo fuzz cmin` on code coverage alone
(`-use_counters=0`, so hit counts do not count as new), then keeps every hand-written seed (any
file not named by a SHA-1) and adds, greedily, the minimised input that covers the most code not
yet covered, until the cap (200 files, 1 MB) or until no input adds any. Inputs a secret scanner
would take for a live key are dropped. Run from anywhere; it honours CARGO_TARGET_DIR.
"""

import argparse
import hashlib
import heapq
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HASH_NAME = re.compile(r"^[0-9a-f]{40}$")
# SECURITY.md's scanner pattern, without word boundaries (stricter).
KEY_SHAPED = re.compile(rb"kw_(live|test)_[0-9A-Za-z]{38}")


def read_dir(path):
    for name in sorted(os.listdir(path)):
        with open(os.path.join(path, name), "rb") as f:
            yield name, f.read()


def coverage(binary, name, data, tmp):
    """The code (libFuzzer PC indices) one input covers, from a merge of that input alone (a
    merge control file lists, per input, only what the inputs before it had not covered)."""
    src, out, control = (os.path.join(tmp, d) for d in ("one-in", "one-out", "one-control"))
    for d in (src, out):
        shutil.rmtree(d, ignore_errors=True)
        os.mkdir(d)
    if os.path.exists(control):
        os.remove(control)  # libFuzzer would resume the last merge from it
    with open(os.path.join(src, name), "wb") as f:
        f.write(data)
    cmd = [binary, "-merge=1", "-use_counters=0", f"-merge_control_file={control}", out, src]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not os.path.exists(control):  # an empty input is not merged
        return set()
    with open(control) as f:
        cov = [line.split()[2:] for line in f if line.startswith("COV ")]
    return set(cov[0]) if cov else set()


def fuzz_binary(target):
    host = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True, cwd=ROOT)
    triple = next(l.split()[1] for l in host.stdout.splitlines() if l.startswith("host:"))
    target_dir = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "fuzz", "target")
    return os.path.join(target_dir, triple, "release", target)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target")
    ap.add_argument("dirs", nargs="*", help="more inputs, e.g. a fuzz run's scratch corpus")
    ap.add_argument("--max-files", type=int, default=200)
    ap.add_argument("--max-bytes", type=int, default=1_000_000)
    args = ap.parse_args()

    corpus = os.path.join(ROOT, "fuzz", "corpus", args.target)
    seeds, inputs = {}, {}
    for name, data in read_dir(corpus):
        if HASH_NAME.match(name):
            inputs[name] = data
        else:
            seeds[name] = data
    for d in args.dirs:
        for _, data in read_dir(d):
            inputs.setdefault(hashlib.sha1(data).hexdigest(), data)
    for data in seeds.values():
        inputs.pop(hashlib.sha1(data).hexdigest(), None)
    dropped = [n for n, d in inputs.items() if KEY_SHAPED.search(d)]
    for n in dropped:
        del inputs[n]

    with tempfile.TemporaryDirectory(prefix=f"trim-{args.target}-") as tmp:
        work = os.path.join(tmp, "corpus")
        os.mkdir(work)
        for name, data in {**inputs, **seeds}.items():
            with open(os.path.join(work, name), "wb") as f:
                f.write(data)
        env = dict(os.environ, RUSTC_BOOTSTRAP="1")
        cmd = ["cargo", "fuzz", "cmin", args.target, work, "--", "-use_counters=0"]
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        minimised = {name for name, _ in read_dir(work)}
        binary = fuzz_binary(args.target)
        pool = {**{n: inputs[n] for n in minimised if n in inputs}, **seeds}
        covers = {n: coverage(binary, n, d, tmp) for n, d in pool.items()}

    everything = set().union(*covers.values())
    covered = set().union(*(covers[n] for n in seeds))
    size = sum(len(d) for d in seeds.values())
    # Lazy greedy: a gain only shrinks as more is covered, so a stale gain is an upper bound.
    heap = [(-len(covers[n] - covered), len(inputs[n]), n) for n in pool if n not in seeds]
    heapq.heapify(heap)
    chosen = []
    while heap and len(seeds) + len(chosen) < args.max_files:
        _, length, name = heapq.heappop(heap)
        gain = covers[name] - covered
        if heap and len(gain) < -heap[0][0]:
            heapq.heappush(heap, (-len(gain), length, name))
            continue
        if not gain:
            break
        if size + length > args.max_bytes:
            continue
        chosen.append(name)
        covered |= gain
        size += length

    for name in os.listdir(corpus):
        if HASH_NAME.match(name):
            os.remove(os.path.join(corpus, name))
    for name in chosen:
        with open(os.path.join(corpus, name), "wb") as f:
            f.write(inputs[name])
    print(f"{args.target}: {len(seeds)} seeds + {len(chosen)} of {len(minimised)} minimised "
          f"inputs, {size} bytes, covering {len(covered)} of the {len(everything)} PCs the "
          f"minimised corpus covers; {len(dropped)} key-shaped inputs dropped")


if __name__ == "__main__":
    if shutil.which("cargo") is None:
        sys.exit("cargo is not on the PATH")
    main()
