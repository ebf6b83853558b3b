"""Benchmark novel.split's pure text path: decode + split + write every chapter to local files.

Run with the project's venv:  .venv/bin/python benchmarks/novel_split.py [--runs 3]

For each novel in tests/data/novels (decompressed into a temporary directory), and for a ~20 MB
concatenation of them in UTF-8 and in GB18030, it prints the median end-to-end throughput of
`--runs` runs, the stages' share, the tracemalloc peak and the ru_maxrss growth (measured in a
fresh subprocess), both as a multiple of the file size. "MB/s" is wall-clock, "cpu" the same
from process CPU time (fairer on a shared machine), "d+s" decode + split alone (the real write
goes to R2, not to local files).
Targets: ≥ 20 MB/s end to end, peak memory < 6x the file size.
"""

from __future__ import annotations

import argparse
import json
import lzma
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterable
from pathlib import Path

from jobrunner_cineqo._novel.chapters import Chapter, Outline, outline_chapters
from jobrunner_cineqo._novel.decode import decode_novel

REPO = Path(__file__).resolve().parents[1]
NOVELS = REPO / "tests" / "data" / "novels"  # xz-compressed
TARGET_BYTES = 20_000_000


def write_chapters(outline: Outline, chapters: Iterable[Chapter], dest: Path) -> int:
    """Stand-in for the storage step: chapters/0001.txt … and a manifest.json."""
    folder = dest / "chapters"
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for c in chapters:
        name = f"chapters/{c.index + 1:04d}.txt"
        (dest / name).write_text(c.text, encoding="utf-8")
        entries.append(
            {
                "index": c.index,
                "file": name,
                "title": c.title,
                "number": c.number,
                "volume": c.volume,
                "kind": c.kind,
                "part": c.part,
                "chars": c.chars,
            }
        )
    manifest = {"chapters": entries, "fallback": outline.fallback, "warnings": outline.warnings}
    (dest / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return len(entries)


def pipeline(path: Path, dest: Path) -> dict[str, float]:
    """Decode, split and write one file; returns the seconds each stage took."""
    c0, t0 = time.process_time(), time.perf_counter()
    decoded = decode_novel(path.read_bytes())  # the bytes are freed once decoded
    t1 = time.perf_counter()
    outline = outline_chapters(decoded.text)
    t2 = time.perf_counter()
    count = write_chapters(outline, outline.chapters(decoded.text), dest)
    t3, c3 = time.perf_counter(), time.process_time()
    return {
        "decode": t1 - t0,
        "split": t2 - t1,
        "write": t3 - t2,
        "cpu": c3 - c0,
        "chapters": count,
    }


def traced_peak(path: Path, dest: Path) -> int:
    tracemalloc.start()
    try:
        pipeline(path, dest)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def rss_growth(path: Path) -> int:
    """Peak RSS growth in bytes of a fresh interpreter running the pipeline once."""
    out = subprocess.run(
        [sys.executable, __file__, "--rss", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip())


def _peak_rss() -> int:
    # VmHWM belongs to this process image; ru_maxrss would carry the parent's peak across exec.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rss_child(path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = _peak_rss()
        pipeline(path, Path(tmp))
        print(_peak_rss() - before)


def unpack_novels(folder: Path) -> list[Path]:
    """The repository's novels, decompressed into `folder`."""
    paths = []
    for packed in sorted(NOVELS.glob("*.txt.xz")):
        path = folder / packed.name.removesuffix(".xz")
        path.write_bytes(lzma.decompress(packed.read_bytes()))
        paths.append(path)
    return paths


def make_concatenation(folder: Path, novels: list[Path], codec: str) -> Path:
    """~20 MB of all the novels one after another, repeated, encoded with `codec`."""
    texts = [decode_novel(p.read_bytes()).text for p in novels]
    one = "\n\n".join(texts).encode(codec)
    data = b"\n\n".join([one] * -(-TARGET_BYTES // len(one)))
    path = folder / f"concatenated_{codec}.txt"
    path.write_bytes(data)
    return path


def measure(path: Path, runs: int) -> dict[str, object]:
    size = path.stat().st_size
    timings = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            timings.append(pipeline(path, Path(tmp)))
    totals = [t["decode"] + t["split"] + t["write"] for t in timings]
    median = sorted(range(runs), key=lambda i: totals[i])[runs // 2]
    with tempfile.TemporaryDirectory() as tmp:
        peak = traced_peak(path, Path(tmp))
    return {
        "file": path.name,
        "mb": size / 1e6,
        "chapters": int(timings[median]["chapters"]),
        "decode": timings[median]["decode"],
        "split": timings[median]["split"],
        "write": timings[median]["write"],
        "mb_s": size / 1e6 / statistics.median(totals),
        "cpu_mb_s": size / 1e6 / statistics.median(t["cpu"] for t in timings),
        "text_mb_s": size / 1e6 / statistics.median(t["decode"] + t["split"] for t in timings),
        "traced": peak / size,
        "rss": rss_growth(path) / size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rss", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss:
        _rss_child(args.rss)
        return
    if not NOVELS.is_dir():
        sys.exit(f"{NOVELS} is absent")
    head = f"{'file':44} {'MB':>6} {'parts':>5} {'decode':>7} {'split':>6} {'write':>6}"
    print(f"{head} {'MB/s':>6} {'cpu':>6} {'d+s':>6} {'traced':>7} {'rss':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        novels = unpack_novels(Path(tmp))
        joined = [make_concatenation(Path(tmp), novels, codec) for codec in ("utf-8", "gb18030")]
        files = [*novels, *joined]
        for path in files:
            r = measure(path, args.runs)
            print(
                f"{r['file']:44} {r['mb']:6.2f} {r['chapters']:5} {r['decode']:6.3f}s"
                f" {r['split']:5.3f}s {r['write']:5.3f}s {r['mb_s']:6.1f} {r['cpu_mb_s']:6.1f}"
                f" {r['text_mb_s']:6.1f}"
                f" {r['traced']:6.2f}x {r['rss']:5.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
