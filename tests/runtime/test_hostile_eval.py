"""Hostile input, round 2 (``edgepose eval``): results pycocotools would score wrongly (NaN keypoints: AP 0.089; two
values per keypoint: AP 0, exit 0) or crash on (tracebacks) are refused with one line naming the first offending
entry, before any AP is printed; the summary target is checked before the work."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgepose.cli import main

pytest.importorskip("pycocotools")


@pytest.fixture(scope="module")
def gt(coco_dir) -> dict:
    return json.loads((coco_dir / "test_coco.json").read_text())


@pytest.fixture(scope="module")
def perfect(gt) -> list[dict]:
    """The ground truth as predictions (score 1 per keypoint): AP 1."""
    return [{"image_id": a["image_id"], "category_id": 1, "score": 1.0,
             "keypoints": [float(v) if i % 3 != 2 else 1.0 for i, v in enumerate(a["keypoints"])]}
            for a in gt["annotations"] if a.get("num_keypoints", 0)]


def evaluate(capsys, tmp_path: Path, gt: dict, preds, *extra) -> tuple[int, str, str, Path, Path]:
    """``edgepose eval`` in-process on ``gt`` and ``preds`` written to tmp files: (code, stdout, stderr, gt, pred)."""
    gt_path, pred_path = tmp_path / "gt.json", tmp_path / "pred.json"
    gt_path.write_text(json.dumps(gt))
    pred_path.write_text(json.dumps(preds) if not isinstance(preds, str) else preds)
    code = main(["eval", "--gt", str(gt_path), "--pred", str(pred_path), *map(str, extra)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err, gt_path, pred_path


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_perfect_predictions_score_1_and_write_the_summary(tmp_path, gt, perfect, capsys):
    code, out, err, _, _ = evaluate(capsys, tmp_path, gt, perfect, "--json", tmp_path / "summary.json")
    assert code == 0 and err == "" and "Average Precision" in out
    assert json.loads((tmp_path / "summary.json").read_text())["AP"] == 1.0


def _set(field: str, value, entry: int = 0):
    def change(preds: list[dict]) -> list[dict]:
        preds[entry][field] = value
        return preds
    return change


def _keypoint(index: int, value):
    def change(preds: list[dict]) -> list[dict]:
        preds[1]["keypoints"][index] = value
        return preds
    return change


BAD_PREDICTIONS = {
    "NaN keypoint": (_keypoint(4, float("nan")),
                     "result 1 (image_id 40083): keypoint value 4 (keypoint 1, y) is nan, not a finite number"),
    "Infinite keypoint": (_keypoint(0, float("inf")),
                          "result 1 (image_id 40083): keypoint value 0 (keypoint 0, x) is inf, not a finite number"),
    "null keypoint": (_keypoint(2, None),
                      "result 1 (image_id 40083): keypoint value 2 (keypoint 0, s) is None, not a finite number"),
    "string keypoint": (_keypoint(3, "12.5"),
                        "result 1 (image_id 40083): keypoint value 3 (keypoint 1, x) is '12.5', not a finite number"),
    "bool keypoint": (_keypoint(5, True),
                      "result 1 (image_id 40083): keypoint value 5 (keypoint 1, s) is True, not a finite number"),
    "two values per keypoint": (lambda p: [{**r, "keypoints": [v for i, v in enumerate(r["keypoints"]) if i % 3 != 2]}
                                           for r in p],
                                "result 0 (image_id 785): keypoints hold 34 values, not 51 (x, y and score for each "
                                "of the 17 COCO keypoints)"),
    "16 keypoints": (lambda p: _set("keypoints", p[0]["keypoints"][:48])(p),
                     "result 0 (image_id 785): keypoints hold 48 values, not 51 (x, y and score for each of the 17 "
                     "COCO keypoints)"),
    "keypoints not a list": (_set("keypoints", {"x": 1}),
                             "result 0 (image_id 785): keypoints are dict, not a list of 51 numbers"),
    "NaN score": (_set("score", float("nan"), 3), "result 3 (image_id 196141): score nan is not a finite number"),
    "string score": (_set("score", "0.9"), "result 0 (image_id 785): score '0.9' is not a finite number"),
    "no category_id": (lambda p: [{k: v for k, v in r.items() if k != "category_id"} for r in p],
                       "result 0 lacks category_id (every result needs image_id, category_id, keypoints, score)"),
    "no score, no keypoints": (lambda p: [{"image_id": 785, "category_id": 1}] + p,
                               "result 0 lacks keypoints, score (every result needs image_id, category_id, "
                               "keypoints, score)"),
    "not a dict": (lambda p: p + [[1, 2, 3]], "result 12 is list, not a dict with image_id, category_id, keypoints, "
                                              "score"),
}


@pytest.mark.parametrize("case", list(BAD_PREDICTIONS))
def test_bad_predictions_are_refused_naming_the_entry(tmp_path, gt, perfect, capsys, case):
    change, message = BAD_PREDICTIONS[case]
    code, out, err, _, pred = evaluate(capsys, tmp_path, gt, change(copy.deepcopy(perfect)), "--json",
                                       tmp_path / "summary.json")
    assert code == 2 and out == ""
    assert one_line(err) == f"edgepose eval: error: {pred}: {message}"
    assert not (tmp_path / "summary.json").exists()


def test_unknown_category_is_refused(tmp_path, gt, perfect, capsys):
    code, out, err, gt_path, pred = evaluate(capsys, tmp_path, gt, _set("category_id", 2, 3)(copy.deepcopy(perfect)))
    assert code == 2 and out == ""
    assert one_line(err) == (f"edgepose eval: error: {pred}: result 3 (image_id 196141) has category_id 2, not one of "
                             f"{gt_path}'s [1]")


def test_unknown_image_ids_are_refused(tmp_path, gt, perfect, capsys):
    preds = copy.deepcopy(perfect)
    preds[0]["image_id"], preds[1]["image_id"] = "000000000785", 12345
    code, out, err, gt_path, pred = evaluate(capsys, tmp_path, gt, preds)
    assert code == 2 and out == ""
    assert one_line(err) == (f"edgepose eval: error: {pred} has image_ids not in {gt_path}: ['000000000785', 12345] "
                             f"(2 in all; predict with --coco {gt_path} to match ids)")


@pytest.mark.parametrize(("text", "message"), [("[]", "holds no predictions (expected a non-empty COCO results list)"),
                                               ('{"a": 1}', "holds no predictions (expected a non-empty COCO results "
                                                            "list)")])
def test_empty_or_wrong_shaped_prediction_files_are_refused(tmp_path, gt, capsys, text, message):
    code, _, err, _, pred = evaluate(capsys, tmp_path, gt, text)
    assert code == 2 and one_line(err) == f"edgepose eval: error: {pred} {message}"


def _gt_change(change):
    def apply(gt: dict) -> dict:
        gt = copy.deepcopy(gt)
        change(gt)
        return gt
    return apply


BAD_GROUND_TRUTH = {
    "no categories": (_gt_change(lambda g: g.pop("categories")),
                      "{gt} has no 'categories' list: COCO evaluation needs the person category"),
    "annotation without keypoints": (_gt_change(lambda g: g["annotations"][2].pop("keypoints")),
                                     "{gt}: annotation 2 lacks keypoints: "),
    "annotation with 2-value keypoints": (
        _gt_change(lambda g: g["annotations"][1].update(keypoints=g["annotations"][1]["keypoints"][:34])),
        "{gt}: annotation 1 (id {id1}): keypoints hold 34 values, not 51"),
    "image without id": (_gt_change(lambda g: g["images"][0].pop("id")), "{gt}: image 0 lacks id: "),
    "not a COCO file": (lambda g: [g], "{gt} is not a COCO annotation file (needs 'images' and 'annotations' lists)"),
}


@pytest.mark.parametrize("case", list(BAD_GROUND_TRUTH))
def test_bad_ground_truth_is_refused(tmp_path, gt, perfect, capsys, case):
    change, message = BAD_GROUND_TRUTH[case]
    code, out, err, gt_path, _ = evaluate(capsys, tmp_path, change(gt), perfect)
    assert code == 2 and out == ""
    assert one_line(err).startswith("edgepose eval: error: " + message.format(gt=gt_path,
                                                                              id1=gt["annotations"][1]["id"]))


def test_summary_target_that_is_a_folder_is_refused_before_evaluating(tmp_path, gt, perfect, capsys):
    (tmp_path / "summary").mkdir()
    code, out, err, _, _ = evaluate(capsys, tmp_path, gt, perfect, "--json", tmp_path / "summary")
    assert code == 2 and out == ""  # no AP printed: nothing was evaluated
    assert one_line(err) == f"edgepose eval: error: cannot write {tmp_path}/summary: it is a folder"


def test_summary_target_below_a_file_is_refused(tmp_path, gt, perfect, capsys):
    (tmp_path / "file").write_text("x")
    code, out, err, _, _ = evaluate(capsys, tmp_path, gt, perfect, "--json", tmp_path / "file" / "summary.json")
    assert code == 2 and out == ""
    assert one_line(err) == (f"edgepose eval: error: cannot write {tmp_path}/file/summary.json: {tmp_path}/file is "
                             "a file")


def test_summary_in_a_read_only_folder_is_refused(tmp_path, gt, perfect, coco_dir):
    from tests.runtime.test_hostile_predict import read_only_command

    folder = tmp_path / "ro"
    folder.mkdir()
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(perfect))
    argv = [sys.executable, "-m", "edgepose", "eval", "--gt", str(tmp_path / "gt.json"), "--pred",
            str(tmp_path / "pred.json"), "--json", str(folder / "summary.json")]
    run = subprocess.run(read_only_command(folder, argv), capture_output=True, text=True)
    folder.chmod(0o755)
    assert run.returncode == 2 and run.stdout == ""
    assert one_line(run.stderr) in (f"edgepose eval: error: cannot write to {folder}: Read-only file system",
                                    f"edgepose eval: error: cannot write to {folder}: Permission denied")
    assert os.listdir(folder) == []
