"""Benchmark novel.split's reading of text, EPUB and DOCX files: decode or unpack, find the
chapters, write every chapter to local files.

Run with the project's venv:  .venv/bin/python benchmarks/novel_formats.py [--runs 5]

Each novel of tests/data/novels is read as its text file, as an EPUB 3 (one XHTML document per
chapter, with a nav document) and as a DOCX (heading styles), both made from the text by the
tests' own builders (tests/cineqo/books.py). Per file it prints the best of `--runs` runs in
process CPU time (wall time is at the mercy of a shared machine) as MB/s of the file, and of the
novel's text file (the same novel as UTF-8/GB18030 text: a fairer yardstick for compressed
formats); the tracemalloc peak and the peak RSS growth of a fresh interpreter (lxml's own C
memory shows only there), both as a multiple of the file size and of the text file's size.
Targets: EPUB >= 20 MB/s, peak memory < 6x the file size.
"""

from __future__ import annotations

import argparse
import lzma
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "cineqo"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from books import docx, epub, parts_of  # noqa: E402
from novel_split import _peak_rss, write_chapters  # noqa: E402

from jobrunner_cineqo._novel.decode import decode_novel  # noqa: E402
from jobrunner_cineqo._novel.novel import load_novel  # noqa: E402

NOVELS = ROOT / "tests" / "data" / "novels"


def pipeline(path: Path, dest: Path) -> int:
    """Read one file and write its chapters, as novel.split does; the number of parts."""
    novel = load_novel(path.read_bytes())  # the bytes are freed once read
    return write_chapters(novel.outline, novel.outline.chapters(novel.text), dest)


def cpu_seconds(path: Path, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.process_time()
            pipeline(path, Path(tmp))
            best = min(best, time.process_time() - start)
    return best


def traced_peak(path: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        pipeline(path, Path(tmp))  # imports and caches first: they are not the file's cost
        tracemalloc.start()
        try:
            pipeline(path, Path(tmp))
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def rss_growth(path: Path) -> int:
    out = subprocess.run(
        [sys.executable, __file__, "--rss", str(path)], check=True, capture_output=True, text=True
    )
    return int(out.stdout.strip())


def _rss_child(path: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pipeline(path, Path(tmp))  # lxml, zipfile and friends imported and warmed up
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = _peak_rss()
        pipeline(path, Path(tmp))
        print(_peak_rss() - before)


def make_files(folder: Path) -> list[tuple[str, Path, Path]]:
    """(novel, format, file) for each novel as text, EPUB and DOCX."""
    files = []
    for packed in sorted(NOVELS.glob("*.txt.xz")):
        text_path = folder / packed.name.removesuffix(".xz")
        text_path.write_bytes(lzma.decompress(packed.read_bytes()))
        parts = parts_of(decode_novel(text_path.read_bytes()).text)
        epub_path = text_path.with_suffix(".epub")
        epub_path.write_bytes(epub(parts))
        docx_path = text_path.with_suffix(".docx")
        docx_path.write_bytes(docx(parts))
        files += [(packed.name, text_path, p) for p in (text_path, epub_path, docx_path)]
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rss", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss:
        _rss_child(args.rss)
        return
    head = f"{'novel':40} {'fmt':4} {'MB':>5} {'parts':>5} {'MB/s':>6} {'text MB/s':>9}"
    print(f"{head} {'traced':>7} {'rss':>6} {'traced/text':>11} {'rss/text':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, text_path, path in make_files(Path(tmp)):
            size, text_size = path.stat().st_size, text_path.stat().st_size
            seconds = cpu_seconds(path, args.runs)
            with tempfile.TemporaryDirectory() as out:
                parts = pipeline(path, Path(out))
            traced, rss = traced_peak(path), rss_growth(path)
            print(
                f"{name.removesuffix('.txt.xz'):40} {path.suffix[1:]:4} {size / 1e6:5.2f}"
                f" {parts:5} {size / 1e6 / seconds:6.1f} {text_size / 1e6 / seconds:9.1f}"
                f" {traced / size:6.2f}x {rss / size:5.2f}x {traced / text_size:10.2f}x"
                f" {rss / text_size:7.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
