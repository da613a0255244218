"""`bonefrac predict` end to end: real models, real files, every error path."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageOps
from pypdf import PdfReader

from app.cli import main
from tests.conftest import MODELS_DIR, REPO
from tests.dicom_files import write_dicom

REQUIRED_KEYS = {"file", "part", "part_probabilities", "fracture_probability", "verdict", "model_version"}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """A real process, as a user runs it, so exit status and stderr are exactly theirs."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "app", "--models-dir", str(MODELS_DIR), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_json_output_and_study(diagnoser, routed_paths):
    """Each image's and the study's answer is the engine's for those files: two views routed
    to one part's fracture model, so real verdicts and probabilities are compared."""
    files = [str(path) for path in next(iter(routed_paths.values()))]
    result = run_cli("predict", *files, "--study", "--json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    payload = json.loads(result.stdout)
    assert len(payload) == 3
    expected = [diagnoser.diagnose(path) for path in files]
    assert all(diagnosis.supported for diagnosis in expected)  # verdicts with their probabilities
    for item, path, diagnosis in zip(payload[:2], files, expected):
        assert set(item) >= REQUIRED_KEYS
        assert item["file"] == os.path.basename(path)
        assert item["part"] == diagnosis.part
        assert item["part_probabilities"] == pytest.approx(diagnosis.part_probabilities, abs=1e-4)
        assert item["verdict"] == diagnosis.verdict.value
        assert item["fracture_probability"] == pytest.approx(diagnosis.fracture_probability, abs=1e-4)
        assert item["file_sha256"] == diagnosis.file_sha256
    study, expected_study = payload[2]["study"], diagnoser.aggregate_study(expected)
    assert study["views"] == 2 and study["verdict"] == expected_study.verdict.value
    assert study["fracture_probability"] == pytest.approx(expected_study.fracture_probability, abs=1e-4)


def test_bad_file_gives_one_line_and_the_rest_still_runs(xray_paths, tmp_path):
    bad = tmp_path / "not_an_xray.png"
    bad.write_text("hello")
    result = run_cli("predict", str(bad), str(xray_paths["hand_0"]), "--json")
    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if line.strip()]
    expected = "not an image file that can be read (expected PNG, JPEG or DICOM; also BMP, TIFF, GIF or WebP)"
    assert error_lines == [f"error: {bad}: {expected}"]
    payload = json.loads(result.stdout)
    assert [item["file"] for item in payload] == [xray_paths["hand_0"].name]


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "truncated"])
def test_each_bad_input_exits_2_with_one_line(case, tmp_path, xray_paths, capsys):
    path = tmp_path / f"{case}.jpg"
    if case == "directory":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":
        data = xray_paths["hand_1"].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    status = main(["--models-dir", str(MODELS_DIR), "predict", str(path)])
    captured = capsys.readouterr()
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ")


def test_table_output_names_each_file(xray_paths, capsys):
    status = main(["--models-dir", str(MODELS_DIR), "predict", str(xray_paths["shoulder_1"])])
    out = capsys.readouterr().out
    assert status == 0
    assert xray_paths["shoulder_1"].name in out
    assert "Decision support, not a diagnosis." in out


def test_heatmaps_are_written_for_supported_images(routed_paths, tmp_path, capsys):
    blank = tmp_path / "blank.png"  # refused before the model: no heatmap
    Image.fromarray(np.full((400, 300), 128, dtype=np.uint8)).save(blank)
    # Two inputs with one file name, as MURA's image1.png: both kept, told apart by `path`.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    same_name = [tmp_path / folder / "view.jpg" for folder in ("a", "b")]
    for target, source in zip(same_name, routed_paths["hand"]):
        shutil.copy(source, target)
    # The blank one given as typed, with "./": `path` must keep it exactly.
    another = list(routed_paths.values())[-1][0]  # of another part where two give verdicts
    files = [*(str(path) for path in (*same_name, another)), "./" + os.path.relpath(blank)]
    status = main(["--models-dir", str(MODELS_DIR), "predict", *files, "--json", "--heatmap", str(tmp_path / "maps")])
    assert status == 0
    payload = json.loads(capsys.readouterr().out)
    assert [item["path"] for item in payload] == files
    names = [item["heatmap"] for item in payload]
    assert names == ["view_heatmap.png", "view_2_heatmap.png", f"{another.stem}_heatmap.png", None]
    assert payload[3]["verdict"] == "unsupported"
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == sorted(names[:3])
    for name, path in zip(names[:3], files):
        with Image.open(tmp_path / "maps" / name) as image, Image.open(path) as original:
            # The overlay is of the upright image (the reader applies EXIF orientation).
            assert image.size == ImageOps.exif_transpose(original).size and image.mode == "RGB"


def test_one_heatmap_that_cannot_be_written_does_not_stop_the_others(routed_paths, tmp_path, capsys):
    first, second = routed_paths["hand"][:2]
    maps = tmp_path / "maps"
    (maps / f"{first.stem}_heatmap.png").mkdir(parents=True)  # a folder where the file should go
    arguments = ["predict", str(first), str(second), "--json", "--heatmap", str(maps)]
    status = main(["--models-dir", str(MODELS_DIR), *arguments])
    captured = capsys.readouterr()
    assert status == 2 and "cannot write the heatmap" in captured.err and "Traceback" not in captured.err
    payload = json.loads(captured.out)
    assert payload[0]["heatmap"] is None and payload[1]["heatmap"] == f"{second.stem}_heatmap.png"
    assert (maps / f"{second.stem}_heatmap.png").is_file()


def test_pdf_report_reads_back(xray_paths, tmp_path, capsys):
    report = tmp_path / "report.pdf"
    status = main(
        ["--models-dir", str(MODELS_DIR), "predict", str(xray_paths["hand_1"]), "--json", "--report", str(report)]
    )
    item = json.loads(capsys.readouterr().out)[0]
    assert status == 0
    text = "\n".join(page.extract_text() for page in PdfReader(report).pages)
    assert f"Body part: {item['part']}" in text
    verdict_word = {"unsupported": "Not supported"}.get(item["verdict"], item["verdict"].capitalize())
    assert f"Verdict: {verdict_word}" in text
    assert item["model_version"] in text
    assert "Decision support, not a diagnosis" in text
    assert not list(tmp_path.glob(".*.tmp"))  # nothing half-written left behind


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def test_png_report_shows_the_engines_result(diagnoser, routed_paths, tmp_path):
    """The PNG is the report composed from the engine's diagnosis of that file, and that
    content is really drawn: the X-ray's own pixels, the heatmap beside it, rows of text."""
    from app.report.content import build_content
    from app.report.png import MARGIN, render_png

    path = routed_paths["hand"][0]
    report = tmp_path / "report.png"
    assert main(["--models-dir", str(MODELS_DIR), "predict", str(path), "--report", str(report)]) == 0
    with Image.open(report) as image:
        assert image.format == "PNG" and image.width == 1240 and image.height >= 1754
    page = _pixels(report.read_bytes())

    (outcome,) = diagnoser.diagnose_many([path])
    assert outcome.diagnosis.heatmap is not None
    views = [(outcome.xray, outcome.diagnosis)]
    # Composed at two times: the rows where those differ are the "Created" line, the only
    # rows the CLI's page may differ in.
    times = (dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2099, 12, 31, 23, 59, tzinfo=dt.UTC))
    content, at_other_time = (build_content(views, diagnoser.manifest, created=when) for when in times)
    early, late = _pixels(render_png(content)), _pixels(render_png(at_other_time))
    assert page.shape == early.shape
    created_rows = np.any(early != late, axis=(1, 2))
    assert 0 < created_rows.sum() < 40  # one line of small text
    assert np.abs(page - early)[~created_rows].max() <= 2  # the heatmap's floats may round apart

    # The X-ray, drawn at the left margin: the rows where that column is gray and not white.
    strip = page[:, MARGIN : MARGIN + 40]
    gray = (strip.max(axis=2) == strip.min(axis=2)) & (strip.min(axis=2) < 250)
    rows = np.flatnonzero(gray.mean(axis=1) > 0.9)
    xray_rows = max(np.split(rows, np.flatnonzero(np.diff(rows) != 1) + 1), key=len)  # not a rule's row
    top, height = xray_rows[0], len(xray_rows)
    assert height > 300
    width = round(height * outcome.xray.width / outcome.xray.height)
    drawn = page[top : top + height, MARGIN : MARGIN + width]
    expected = np.asarray(Image.fromarray(outcome.xray.as_uint8()).resize((width, height)), dtype=int)
    # Compared where the page is gray: a model with a fracture map outlines its regions in colour.
    gray_pixels = drawn.max(axis=2) == drawn.min(axis=2)
    assert gray_pixels.mean() > 0.9
    # Another X-ray: about 0.2. Not 1.0: the edges found here and the report's resampling may be a
    # pixel apart, which costs a sharp, small X-ray (three images share the row with a map) ~0.01.
    assert np.corrcoef(drawn[..., 0][gray_pixels], expected[gray_pixels])[0, 1] > 0.97
    # Beside it, the heatmap overlay: colour, where the X-ray is gray.
    beside = page[top : top + height, MARGIN + width + 20 : MARGIN + 2 * width + 20]
    # (A fracture map colours mostly where it is high: a tenth of the panel or more, where the
    # plain X-ray has none.)
    colourfulness = beside.max(axis=2) - beside.min(axis=2)
    assert (colourfulness > 10).mean() > 0.1
    # Above it, the view's lines of text: bands of rows with dark pixels.
    text_rows = (page[:top, MARGIN:-MARGIN].min(axis=(1, 2)) < 100).astype(int)
    bands = int(np.sum(np.diff(text_rows) == 1))
    view = content.sections[0]
    assert bands >= 1 + len(content.header_lines) + 1 + len(view.lines)  # title, header, heading, lines


@pytest.mark.parametrize("name", ["report.docx", "no_such_folder/report.pdf", "a_folder.pdf"])
def test_bad_report_path_is_refused_before_any_image_is_diagnosed(name, xray_paths, tmp_path, capsys):
    (tmp_path / "a_folder.pdf").mkdir()
    files = [str(xray_paths["hand_0"]), str(xray_paths["elbow_1"])]
    status = main(["--models-dir", str(MODELS_DIR), "predict", *files, "--json", "--report", str(tmp_path / name)])
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("error: ")
    assert captured.out == ""  # nothing was diagnosed, so no results printed
    assert not (tmp_path / name).is_file()


def test_predict_help_describes_file_and_lists_the_exit_codes():
    result = run_cli("predict", "--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    file_help = " ".join(text.split("positional arguments:")[1].split("options:")[0].split())
    assert file_help.startswith("FILE ") and "DICOM" in file_help and "folder" in file_help
    codes = text.split("exit status:")[1]
    for code in ("0", "2", "3"):
        assert any(line.split()[:1] == [code] and len(line.split()) > 2 for line in codes.splitlines()), code


def test_a_folder_is_searched_for_xrays_and_dicom_files(xray_paths, tmp_path, capsys):
    """A folder as a clinic hands it over: images in subfolders, a DICOM file without an
    extension, a DICOMDIR index and other files that are not images (skipped)."""
    folder = tmp_path / "patient"
    (folder / "study2").mkdir(parents=True)
    (folder / ".thumbnails").mkdir()
    shutil.copy(xray_paths["hand_1"], folder / "b_hand.jpg")
    shutil.copy(xray_paths["elbow_0"], folder / "study2" / "ELBOW.JPG")
    shutil.copy(xray_paths["elbow_0"], folder / ".thumbnails" / "elbow.jpg")
    with Image.open(xray_paths["shoulder_1"]) as image:
        write_dicom(folder / "study2" / "IM0001", np.asarray(image.convert("L")).astype(np.uint16) * 16)
    write_dicom(folder / "DICOMDIR", None)  # an index: no pixel data, never an image to diagnose
    (folder / "a_notes.txt").write_text("left hand, fall")
    single = tmp_path / "single.jpg"
    shutil.copy(xray_paths["shoulder_0"], single)
    status = main(["--models-dir", str(MODELS_DIR), "predict", str(folder), str(single), "--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    paths = [item["path"] for item in json.loads(captured.out)]
    found = [folder / "b_hand.jpg", folder / "study2" / "ELBOW.JPG", folder / "study2" / "IM0001", single]
    assert paths == [str(path) for path in found]


def test_a_folder_without_xrays_is_an_error(xray_paths, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "text_only").mkdir()
    (tmp_path / "text_only" / "notes.txt").write_text("no images here")
    folders = [str(tmp_path / "empty"), str(tmp_path / "text_only")]
    status = main(["--models-dir", str(MODELS_DIR), "predict", *folders, str(xray_paths["hand_0"])])
    captured = capsys.readouterr()
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(f"error: {f}: ") for line, f in zip(lines, folders))
    assert xray_paths["hand_0"].name in captured.out  # the other files are still diagnosed


def test_no_table_when_every_file_fails(tmp_path, capsys):
    for name in ("a.png", "b.jpg"):
        (tmp_path / name).write_text("not an image")
    status = main(["--models-dir", str(MODELS_DIR), "predict", str(tmp_path / "a.png"), str(tmp_path / "b.jpg")])
    captured = capsys.readouterr()
    assert status == 2 and len(captured.err.strip().splitlines()) == 2
    assert captured.out == ""


def test_unusable_heatmap_folder(xray_paths, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    status = main(
        ["--models-dir", str(MODELS_DIR), "predict", str(xray_paths["hand_0"]), "--heatmap", str(blocker / "sub")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "heatmap folder" in err[0]


def test_broken_models_exit_3_with_one_line(tmp_path, xray_paths):
    result = subprocess.run(
        [sys.executable, "-m", "app", "--models-dir", str(tmp_path), "predict", str(xray_paths["hand_0"])],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no model manifest")


def test_report_of_a_file_named_in_any_script(routed_paths, tmp_path):
    """DejaVu has no CJK glyphs: the name is printed by code point, and nothing about it
    (a patient's name, possibly) reaches stderr as a font warning."""
    named = tmp_path / "röntgen_手.jpg"
    shutil.copy(routed_paths["hand"][0], named)
    report = tmp_path / "report.pdf"
    result = run_cli("predict", str(named), "--report", str(report), "--note", "患者 follow-up")
    assert result.returncode == 0, result.stderr
    assert "手" not in result.stderr and "患" not in result.stderr and "glyph" not in result.stderr
    text = "\n".join(page.extract_text() for page in PdfReader(report).pages)
    assert "File: röntgen_<U+624B>.jpg" in text
    assert "Note: <U+60A3><U+8005> follow-up" in text


def test_study_of_refused_images_says_why_in_the_table(tmp_path, capsys):
    blanks = []
    for name, grey in (("b1.png", 128), ("b2.png", 90)):
        Image.fromarray(np.full((400, 300), grey, dtype=np.uint8)).save(tmp_path / name)
        blanks.append(str(tmp_path / name))
    status = main(["--models-dir", str(MODELS_DIR), "predict", *blanks, "--study"])
    out = capsys.readouterr().out
    assert status == 0
    assert "study: not supported: none of the images is a radiograph the models can read" in out.splitlines()


def test_png_report_wraps_a_long_name_without_losing_any_of_it():
    from PIL import ImageFont

    from app.report.fonts import REGULAR_FONT, printable
    from app.report.png import _wrap

    font = ImageFont.truetype(str(REGULAR_FONT), 22)
    line = "File: " + printable("山田太郎_右手_2024年11月23日_follow-up_view-2.jpg")
    wrapped = _wrap(line, font, 400)
    assert len(wrapped) > 1
    assert all(font.getlength(part) <= 400 for part in wrapped)
    assert "".join(wrapped).replace(" ", "") == line.replace(" ", "")
    assert all(part.count("<") == part.count(">") for part in wrapped)  # no code point cut in two


def test_package_licence_is_an_spdx_expression():
    """As a TOML table it made every `pip install -e .` (make run) print setuptools' deprecation
    warnings, three times."""
    import tomllib

    from packaging.licenses import canonicalize_license_expression

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert isinstance(project["license"], str)
    assert canonicalize_license_expression(project["license"]) == project["license"]
