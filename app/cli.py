"""`bonefrac`: the desktop app (no arguments) and its command line.

    bonefrac [FILE ...]                        open the window (with these X-rays, as "Open with" does)
    bonefrac predict FILE [FILE ...] [--study] [--json] [--heatmap DIR] [--report PATH] [--dicom DIR]

Exit status: 0 all files diagnosed; 2 a file (or an output path) could not be used, the
other files are still processed; 3 the model files are missing or damaged.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

from app.diagnosis.value import NOTICE
from app.errors import BoneFracError, ModelFilesError
from app.words import confidence_text, study_part_text

EXIT_BAD_INPUT = 2
EXIT_BAD_MODELS = 3
PREDICT_EPILOG = """exit status:
  0  every file was diagnosed
  2  a file, a folder or an output path (--heatmap, --report, --dicom) could not be used: one line
     'error: <file>: <reason>' on stderr; the other files are still diagnosed
  3  the model files are missing or do not match their manifest.json"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bonefrac",
        description="Fracture detection decision support for elbow, hand and shoulder X-rays. "
        "Decision support, not a diagnosis.",
    )
    parser.add_argument("--models-dir", type=Path, default=None, help="folder with manifest.json (default: shipped)")
    commands = parser.add_subparsers(dest="command")
    predict = commands.add_parser(
        "predict",
        help="diagnose X-ray files (PNG, JPEG, DICOM)",
        description="Diagnose X-ray files and print one verdict per image. Decision support, not a diagnosis.",
        epilog=PREDICT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="an X-ray image (PNG, JPEG, DICOM; also BMP, TIFF, GIF, WebP; recognised by content), or a folder: "
        "searched, with its subfolders, for such images and for DICOM files without an extension",
    )
    predict.add_argument("--study", action="store_true", help="the files are views of one study: add a study verdict")
    predict.add_argument("--json", action="store_true", help="print JSON instead of a table")
    predict.add_argument("--heatmap", type=Path, metavar="DIR", help="write heatmap overlays as PNGs into DIR")
    predict.add_argument("--report", type=Path, metavar="PATH", help="write a report (.pdf or .png)")
    predict.add_argument("--note", default="", help="a note to print in the report")
    predict.add_argument(
        "--dicom",
        type=Path,
        metavar="DIR",
        help="write one DICOM result per image into DIR (<name>_result.dcm): a Secondary Capture with the "
        "heatmap and the verdict burned in, filed with the source's patient and study when the input is DICOM",
    )
    window = commands.add_parser("gui", help="open the window (the default); bonefrac FILE ... opens FILEs in it")
    window.add_argument("files", nargs="*", type=Path, metavar="FILE", help="X-rays to open at start")
    return parser


def _window_argv(argv: list[str]) -> list[str]:
    """`bonefrac FILE ...` means `bonefrac gui FILE ...`: a file manager's "Open with" passes
    only the files."""
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        index += 2 if argv[index] == "--models-dir" else 1
    if index < len(argv) and argv[index] not in ("predict", "gui"):
        return [*argv[:index], "gui", *argv[index:]]
    return argv


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_window_argv(sys.argv[1:] if argv is None else list(argv)))
    if args.command in (None, "gui"):
        from app.gui import run_app

        return run_app(args.models_dir, getattr(args, "files", None))
    return predict(args)


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def predict(args: argparse.Namespace) -> int:
    # Outputs are checked before any image is read: a typo must not cost a whole batch.
    if args.report is not None and (problem := _report_problem(args.report)):
        _fail(problem)
        return EXIT_BAD_INPUT
    for folder, what in ((args.heatmap, "heatmap"), (args.dicom, "DICOM result")):
        if folder is not None and (problem := _output_folder_problem(folder, what)):
            _fail(problem)
            return EXIT_BAD_INPUT
    files, status = _expand_folders(args.files)
    if not files:
        return status
    try:
        from app.diagnosis import Diagnoser

        diagnoser = Diagnoser(args.models_dir)
    except ModelFilesError as error:
        _fail(str(error))
        return EXIT_BAD_MODELS

    from tqdm import tqdm

    results = []
    given_paths: list[str] = []
    progress = tqdm(total=len(files), desc="diagnosing", unit="image", disable=None if len(files) > 1 else True)
    # `outcome.source` is each argument exactly as typed: kept for --json's `path`.
    for outcome in diagnoser.diagnose_many(files):
        progress.update()
        if outcome.error is not None:
            progress.clear()
            _fail(f"{Path(outcome.source)}: {outcome.error}")
            status = EXIT_BAD_INPUT
        else:
            results.append((outcome.xray, outcome.diagnosis))
            given_paths.append(str(outcome.source))
    progress.close()
    study = diagnoser.aggregate_study([d for _, d in results]) if args.study and results else None

    heatmap_names: list[str | None] = []
    if args.heatmap is not None:
        heatmap_status, heatmap_names = _write_heatmaps(results, args.heatmap)
        status = max(status, heatmap_status)
    dicom_names: list[str | None] = []
    if args.dicom is not None:
        dicom_status, dicom_names = _write_dicom_results(results, args.dicom, diagnoser.manifest)
        status = max(status, dicom_status)
    if args.json:
        # `path` as given, so entries with the same file name (MURA's image1.png) stay apart.
        payload: list[dict] = [{**d.to_dict(), "path": given} for given, (_, d) in zip(given_paths, results)]
        if args.heatmap is not None:
            for item, name in zip(payload, heatmap_names):
                item["heatmap"] = name
        if args.dicom is not None:
            for item, name in zip(payload, dicom_names):
                item["dicom"] = name
        if study is not None:
            payload.append({"study": study.to_dict()})
        print(json.dumps(payload, indent=2))
    elif results:  # when every file failed, the error lines say it all: no empty table
        print(_table(results, study))
    if args.report is not None and results:
        from app.report import write_report

        try:
            write_report(args.report, results, diagnoser.manifest, study=study, note=args.note)
        except BoneFracError as error:
            _fail(str(error))
            status = EXIT_BAD_INPUT
    return status


def _report_problem(path: Path) -> str | None:
    """Why a report could not be written at `path` (as write_report would refuse it), or None."""
    from app.report import REPORT_SUFFIXES

    if path.suffix.lower() not in REPORT_SUFFIXES:
        return f"{path.name}: a report must end in .pdf or .png"
    if path.is_dir():
        return f"{path}: this is a folder; give the report a file name ending in .pdf or .png"
    if not path.parent.is_dir():
        return f"{path.parent}: the folder does not exist"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"{path.parent}: the report cannot be written in this folder (permission denied)"
    return None


def _output_folder_problem(folder: Path, what: str) -> str | None:
    """Why files could not be written into `folder` (created when missing), or None."""
    if not folder.is_dir():
        try:
            folder.mkdir(parents=True)
        except OSError as error:
            return f"{folder}: cannot create the {what} folder ({error.strerror})"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder}: the {what} files cannot be written in this folder (permission denied)"
    return None


def _expand_folders(arguments: list[str]) -> tuple[list[str], int]:
    """The files to diagnose, and the exit status so far: each argument as typed, a folder
    replaced by the X-rays found in it and its subfolders (sorted; hidden entries and DICOMDIR
    index files skipped). A folder without any is an error, like a missing file."""
    from app.xray.folders import find_xrays  # shared with the window's worklist

    files: list[str] = []
    status = 0
    for given in arguments:
        if not os.path.isdir(given):
            files.append(given)  # the reader says what is wrong with it, if anything
            continue
        found = [str(path) for path in find_xrays(given)]
        if not found:
            _fail(f"{given}: no X-ray images (PNG, JPEG, DICOM, ...) in this folder or its subfolders")
            status = EXIT_BAD_INPUT
        files.extend(found)
    return files, status


def _write_heatmaps(results: list, folder: Path) -> tuple[int, list[str | None]]:
    """Write each supported image's overlay; returns the exit status and, per result, the
    file name written (None where there is no heatmap or writing failed)."""
    from app.atomic import write_bytes_atomic
    from app.diagnosis.heatmap import overlay

    used: set[str] = set()
    names: list[str | None] = [None] * len(results)
    status = 0
    for index, (xray, diagnosis) in enumerate(results):
        if diagnosis.heatmap is None:
            continue
        name = _unique_name(diagnosis.file, "heatmap.png", used)
        buffer = io.BytesIO()
        overlay(xray, diagnosis.heatmap).save(buffer, format="PNG")
        try:
            write_bytes_atomic(folder / name, buffer.getvalue())
        except OSError as error:  # this one is lost; the others are still written
            _fail(f"{folder / name}: cannot write the heatmap ({error.strerror})")
            status = EXIT_BAD_INPUT
            continue
        names[index] = name
    return status, names


def _write_dicom_results(results: list, folder: Path, manifest) -> tuple[int, list[str | None]]:
    """Write each result as a DICOM Secondary Capture; returns the exit status and the names written."""
    from app.report.dicom_result import write_dicom_result

    used: set[str] = set()
    names: list[str | None] = [None] * len(results)
    status = 0
    for index, (xray, diagnosis) in enumerate(results):
        name = _unique_name(diagnosis.file, "result.dcm", used)
        try:
            write_dicom_result(folder / name, xray, diagnosis, manifest)
        except BoneFracError as error:  # this one is lost; the others are still written
            _fail(str(error))
            status = EXIT_BAD_INPUT
            continue
        names[index] = name
    return status, names


def _unique_name(file: str, suffix: str, used: set[str]) -> str:
    """<stem>_<suffix>, numbered when two inputs share a stem (two folders, or .png and .dcm)."""
    stem = Path(file).stem
    name, copy = f"{stem}_{suffix}", 1
    while name in used:
        copy += 1
        name = f"{stem}_{copy}_{suffix}"
    used.add(name)
    return name


def _table(results: list, study) -> str:
    rows = [("file", "body part", "verdict", "fracture p")]
    for _, d in results:
        probability = "-" if d.fracture_probability is None else f"{d.fracture_probability:.2f}"
        rows.append((d.file, f"{d.part} ({confidence_text(d.part_confidence)})", d.verdict.value, probability))
    if study is not None:
        probability = "-" if study.fracture_probability is None else f"{study.fracture_probability:.2f}"
        rows.append((f"study ({len(study.views)} views)", study_part_text(study), study.verdict.value, probability))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    for _, d in results:
        if d.unsupported_reason:
            lines.append(f"{d.file}: not supported: {d.unsupported_reason}")
    if study is not None and study.unsupported_reason:
        lines.append(f"study: not supported: {study.unsupported_reason}")
    lines.append(NOTICE)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
