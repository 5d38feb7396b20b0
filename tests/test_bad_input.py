"""Hostile and broken input: one clear line and an exit code, counted skips, nothing lost.

Every case runs `jax-spatial` in-process (`cli.main`) on tiny inputs: the two-frame KITTI
dummy data of the TFDS builder (plus a third frame copied from the first, so a broken scene
always has valid neighbours), hand-built info pickles, JSON and config files. A case asserts
the exit code, that the one-line message names the problem, and, where the input is only
partly bad, that every valid scene's output is still written and that `summary.json` lists
the skip with its file and field.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import pathlib
import pickle
import shutil

import numpy as np
import pytest
from PIL import Image

from jax_spatial import cli, engine
from jax_spatial.datasets import examples
from jax_spatial.sources import get_source
from jax_spatial.sources import kitti as kitti_lib
from jax_spatial.writers import export

DUMMY_KITTI = (
    pathlib.Path(__file__).resolve().parents[1]
    / "jax_spatial/datasets/spatial_qa/dummy_data/kitti/training"
)
KITTI_IDS = ("000100", "000101", "000102")
KITTI_CLASSES = {"Pedestrian": 0, "Cyclist": 1, "Car": 2}


def run(capsys, *argv) -> tuple[int, str]:
    """`jax-spatial argv...` in-process -> (exit code, what it printed to stderr)."""
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def one_line(err: str) -> str:
    """The error line (the last non-empty line); no traceback was printed before it."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "nothing was printed"
    return lines[-1]


def make_kitti(root: pathlib.Path) -> pathlib.Path:
    """A three-frame KITTI split folder: the dummy frames, and 000102 a copy of 000100."""
    split = root / "training"
    for sub in ("image_2", "label_2", "calib"):
        (split / sub).mkdir(parents=True)
        for sid in KITTI_IDS:
            src_id = "000100" if sid == "000102" else sid
            ext = ".png" if sub == "image_2" else ".txt"
            shutil.copy(DUMMY_KITTI / sub / f"{src_id}{ext}", split / sub / f"{sid}{ext}")
    return root


@pytest.fixture(scope="module")
def kitti_root(tmp_path_factory) -> pathlib.Path:
    """An intact KITTI folder for cases that never write into it."""
    return make_kitti(tmp_path_factory.mktemp("kitti"))


@pytest.fixture
def kitti_copy(tmp_path) -> pathlib.Path:
    """A KITTI folder a case may break."""
    return make_kitti(tmp_path / "kitti")


@pytest.fixture(scope="module")
def qa_file(tmp_path_factory, kitti_root) -> pathlib.Path:
    """A real qa.jsonl over the intact KITTI folder."""
    out = tmp_path_factory.mktemp("qa_out")
    code = cli.main(["generate", "--source", "kitti", "--root", str(kitti_root), "--out",
                     str(out), "--quiet", "--no-sheet"])  # fmt: skip
    assert code == 0
    return out / "qa.jsonl"


def generate_kitti(capsys, root, out, *extra):
    return run(capsys, "generate", "--source", "kitti", "--root", root, "--out", out,
               "--quiet", "--no-sheet", *extra)  # fmt: skip


def summary_of(out) -> dict:
    return json.loads((pathlib.Path(out) / "summary.json").read_text())


def scenes_written(out) -> set[str]:
    lines = (pathlib.Path(out) / "qa.jsonl").read_text().splitlines()
    return {json.loads(line)["meta"]["scene_id"] for line in lines}


def assert_skipped_with_valid_kept(out, bad_scene, file_part, field_part, valid=None):
    """The bad scene is listed with its file and field; every other scene's QA is written."""
    summary = summary_of(out)
    skips = summary["scenes"]["skipped_scenes"]
    assert [s["scene_id"] for s in skips] == [bad_scene], skips
    assert file_part in (skips[0]["file"] or ""), skips[0]
    assert field_part in (skips[0]["field"] or ""), skips[0]
    assert file_part in skips[0]["reason"] or pathlib.Path(file_part).name in skips[0]["reason"]
    valid = set(valid if valid is not None else KITTI_IDS) - {bad_scene}
    assert summary["scenes"]["done"] == len(valid)
    assert scenes_written(out) == valid


# -- flags ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--batch-size", "0"], 2, "--batch-size must be at least 1"),
        (["--batch-size", "-3"], 2, "--batch-size must be at least 1"),
        (["--batch-size", "many"], 2, "invalid int value"),
        (["--max-scenes", "0"], 2, "--max-scenes must be at least 1"),
        (["--max-scenes", "-2"], 2, "--max-scenes must be at least 1"),
        (["--formats", "bogus"], 2, "unknown format 'bogus'"),
        (["--formats", "0"], 2, "K >= 1"),
        (["--formats", "caption/raw,nope/raw"], 2, "unknown format"),
        (["--source", "nope"], 2, "unknown source 'nope'"),
        (["--source", "kitti"], 2, "needs --root"),
        (["--set", "nope=1"], 2, "unknown procedural option 'nope'"),
        (["--set", "num_scenes"], 2, "is not key=value"),
        (["--set", "num_scenes=lots"], 2, "num_scenes=lots"),
        (["--set", "mesh_fraction=half"], 2, "mesh_fraction=half"),
        (["--sheet-size", "3"], 2, "unrecognized arguments"),
    ],
)
def test_bad_generate_flags(capsys, tmp_path, argv, code, message):
    got, err = run(capsys, "generate", "--out", tmp_path / "out", "--quiet", *argv)
    assert got == code
    assert message in err
    assert not (tmp_path / "out" / "qa.jsonl").exists()


def test_unknown_subcommand(capsys):
    code, err = run(capsys, "generat")
    assert code == 2 and "invalid choice" in err


def test_set_names_the_close_option_of_an_image_only_source(capsys, tmp_path):
    (tmp_path / "coco").mkdir()
    (tmp_path / "coco" / "x").write_text("")
    code, err = run(capsys, "generate", "--source", "coco", "--root", tmp_path / "coco",
                    "--set", "depth=d", "--out", tmp_path / "out")  # fmt: skip
    line = one_line(err)
    assert code == 2 and "'depth' (did you mean 'depth_dir'?)" in line and "hfov_deg" in line


def test_set_bad_bool_is_a_usage_error(capsys, kitti_root, tmp_path):
    code, err = generate_kitti(capsys, kitti_root, tmp_path / "out", "--set", "load_points=maybe")
    assert code == 2 and "load_points=maybe" in one_line(err) and "true or false" in err


def test_set_value_the_source_rejects_is_an_input_error(capsys, tmp_path):
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "x.txt").write_text("")
    code, err = run(capsys, "generate", "--source", "scannet", "--root", tmp_path / "scan",
                    "--set", "boxes=diagonal", "--out", tmp_path / "out")  # fmt: skip
    assert code == 1 and "boxes must be 'aligned' or 'unaligned'" in one_line(err)


def test_set_reaches_the_source(capsys, kitti_root, tmp_path):
    code, _ = generate_kitti(capsys, kitti_root, tmp_path / "out", "--set", "load_points=false",
                             "--max-scenes", "1")  # fmt: skip
    assert code == 0
    assert summary_of(tmp_path / "out")["scenes"]["done"] == 1


# -- roots --------------------------------------------------------------------------------------


def test_missing_root(capsys, tmp_path):
    code, err = generate_kitti(capsys, tmp_path / "nowhere", tmp_path / "out")
    assert code == 1 and "--root" in err and "does not exist" in one_line(err)


def test_root_is_a_file(capsys, tmp_path):
    (tmp_path / "file.txt").write_text("x")
    code, err = generate_kitti(capsys, tmp_path / "file.txt", tmp_path / "out")
    assert code == 1 and "is a file" in one_line(err)


def test_empty_root(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, err = generate_kitti(capsys, tmp_path / "empty", tmp_path / "out")
    assert code == 1 and "is empty" in one_line(err)


def test_root_of_another_dataset(capsys, tmp_path):
    (tmp_path / "coco" / "annotations").mkdir(parents=True)
    code, err = generate_kitti(capsys, tmp_path / "coco", tmp_path / "out")
    line = one_line(err)
    assert code == 1 and "as a kitti dataset" in line and "split folder not found" in line


def test_kitti_folder_without_labels_has_no_scenes(capsys, tmp_path):
    (tmp_path / "k" / "image_2").mkdir(parents=True)
    code, err = generate_kitti(capsys, tmp_path / "k", tmp_path / "out")
    assert code == 1 and "no kitti scenes found" in one_line(err)


@pytest.mark.parametrize(
    ("name", "write", "message"),
    [
        ("two_pkls", lambda r: [(r / f"{n}.pkl").write_bytes(pickle.dumps({})) for n in "ab"],
         "exactly one"),
        ("truncated", lambda r: (r / "i.pkl").write_bytes(pickle.dumps({"a": [1] * 50})[:20]),
         "not a readable pickle (truncated"),
        ("not_a_pickle", lambda r: (r / "i.pkl").write_text("hello"), "not a readable pickle"),
        ("v1_0_list", lambda r: (r / "i.pkl").write_bytes(pickle.dumps([{}])), "no data_list"),
        ("no_dataset", lambda r: (r / "i.pkl").write_bytes(
            pickle.dumps({"metainfo": {}, "data_list": []})), "names no dataset"),
        ("bad_dataset", lambda r: (r / "i.pkl").write_bytes(
            pickle.dumps({"metainfo": {"DATASET": "waymo"}, "data_list": []})), "unsupported"),
    ],
)  # fmt: skip
def test_unreadable_info_file(capsys, tmp_path, name, write, message):
    root = tmp_path / name
    root.mkdir()
    write(root)
    code, err = run(capsys, "generate", "--source", "mmdet3d", "--root", root,
                    "--out", tmp_path / "out")  # fmt: skip
    line = one_line(err)
    assert code == 1 and message in line


class _Shell:
    """Pickles as a call of `os.system` (what a hostile info file holds)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_hostile_info_file_is_refused_and_runs_nothing(capsys, tmp_path):
    root = tmp_path / "hostile"
    root.mkdir()
    marker = tmp_path / "pwned"
    data = {"metainfo": {"DATASET": "KITTI"}, "data_list": [_Shell(marker)]}
    (root / "i.pkl").write_bytes(pickle.dumps(data))
    code, err = run(capsys, "generate", "--source", "mmdet3d", "--root", root,
                    "--out", tmp_path / "out")  # fmt: skip
    assert code == 1 and "refused global" in one_line(err) and "system" in err
    assert not marker.exists()


def test_coco_truncated_json_names_file_and_line(capsys, tmp_path):
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_val2017.json").write_text('{"images": [{"id": 1},\n')
    code, err = run(capsys, "generate", "--source", "coco", "--root", root,
                    "--out", tmp_path / "out")  # fmt: skip
    line = one_line(err)
    assert code == 1 and "instances_val2017.json:2" in line and "not valid JSON" in line


def test_coco_root_without_annotations(capsys, tmp_path):
    (tmp_path / "coco" / "val2017").mkdir(parents=True)
    code, err = run(capsys, "generate", "--source", "coco", "--root", tmp_path / "coco",
                    "--out", tmp_path / "out")  # fmt: skip
    assert code == 1 and "instances JSON not found" in one_line(err)


def test_visual_genome_root_without_objects(capsys, tmp_path):
    (tmp_path / "vg" / "VG_100K").mkdir(parents=True)
    code, err = run(capsys, "generate", "--source", "visual_genome", "--root", tmp_path / "vg",
                    "--out", tmp_path / "out")  # fmt: skip
    assert code == 1 and "no objects.json or attributes.json" in one_line(err)


def test_rgbd_root_with_no_frames(capsys, tmp_path):
    (tmp_path / "rgbd").mkdir()
    (tmp_path / "rgbd" / "notes.txt").write_text("no frames here")
    code, err = run(capsys, "generate", "--source", "rgbd", "--root", tmp_path / "rgbd",
                    "--out", tmp_path / "out")  # fmt: skip
    assert code == 1 and "no rgbd scenes found" in one_line(err)


def test_scannet_named_infos_missing(capsys, tmp_path):
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "x.txt").write_text("")
    code, err = run(capsys, "generate", "--source", "scannet", "--root", tmp_path / "scan",
                    "--set", "infos=nope.pkl", "--out", tmp_path / "out")  # fmt: skip
    assert code == 1 and "infos file not found" in one_line(err)


# -- outputs ------------------------------------------------------------------------------------


def test_out_is_a_file(capsys, kitti_root, tmp_path):
    (tmp_path / "taken").write_text("x")
    code, err = generate_kitti(capsys, kitti_root, tmp_path / "taken")
    assert code == 1 and "--out" in err and "is a file" in one_line(err)


def test_out_is_not_writable(capsys, kitti_root, tmp_path):
    (tmp_path / "taken").write_text("x")
    code, err = generate_kitti(capsys, kitti_root, tmp_path / "taken" / "sub")
    assert code == 1 and "is not writable" in one_line(err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder(capsys, kitti_root, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, err = generate_kitti(capsys, kitti_root, locked / "out")
    finally:
        locked.chmod(0o700)
    assert code == 1 and "not writable" in one_line(err)


def test_second_run_into_one_out_is_refused(capsys, kitti_root, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".lock", "a+") as held:
        # What a first run holds while it writes (flock conflicts across open files).
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 4242")
        held.flush()
        code, err = generate_kitti(capsys, kitti_root, out)
    assert code == 1 and "being written by another run" in one_line(err) and "4242" in err
    assert not (out / "qa.jsonl").exists()
    # Released: the next run goes ahead.
    code, _ = generate_kitti(capsys, kitti_root, out)
    assert code == 0 and scenes_written(out) == set(KITTI_IDS)


def test_ctrl_c_is_one_line(capsys, kitti_root, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "_generate", interrupted)
    code, err = generate_kitti(capsys, kitti_root, tmp_path / "out")
    assert code == 130 and one_line(err).endswith("interrupted")
    # The lock went with the run.
    monkeypatch.undo()
    code, _ = generate_kitti(capsys, kitti_root, tmp_path / "out", "--max-scenes", "1")
    assert code == 0


# -- config files -------------------------------------------------------------------------------

_GOOD_HEAD = (
    "import ml_collections\n\ndef get_config(arg=None):\n    c = ml_collections.ConfigDict()\n"
)


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ("def get_config(arg=None)\n    pass\n", 1, ":1: expected ':'"),
        ("x = 1\n", 1, "has no get_config"),
        ("import nonexistent_module_xyz\n", 1, "ModuleNotFoundError"),
        ("def get_config(arg=None):\n    raise RuntimeError('boom')\n", 1, "boom"),
        ("def get_config(arg=None):\n    return 3\n", 1, "returned int"),
        (_GOOD_HEAD + "    c.batch_sise = 3\n    return c\n", 1, "did you mean 'batch_size'"),
        (_GOOD_HEAD + "    c.relations = ml_collections.ConfigDict({'abs_margin': 0.1})\n"
         "    return c\n", 1, "'relations.abs_margin' (did you mean 'abs_margin_m'?)"),
        (_GOOD_HEAD + "    c.quotas = ml_collections.ConfigDict({'nope': 1})\n    return c\n",
         1, "'quotas.nope'"),
        (_GOOD_HEAD + "    c.observe = 3\n    return c\n", 1, "observe must be a dict"),
        (_GOOD_HEAD + "    c.batch_size = 0\n    return c\n", 2, "batch_size must be at least 1"),
        (_GOOD_HEAD + "    c.batch_size = 'big'\n    return c\n", 2, "must be an integer"),
        (_GOOD_HEAD + "    c.formats = 'nope/raw'\n    return c\n", 2, "unknown format"),
        (_GOOD_HEAD + "    c.options = {'num_scenez': 2}\n    return c\n", 2,
         "no option 'num_scenez'"),
    ],
)  # fmt: skip
def test_bad_config_file(capsys, tmp_path, body, code, message):
    path = tmp_path / "cfg.py"
    path.write_text(body)
    got, err = run(capsys, "generate", "--config", path, "--out", tmp_path / "out", "--quiet")
    assert got == code
    assert message in one_line(err)


@pytest.mark.parametrize(
    ("spec", "code", "message"),
    [
        ("{tmp}/missing.py", 1, "not found"),
        ("{tmp}", 1, "is a folder"),
        ("{repo}/configs/generate.py:sorce=kitti", 2, "did you mean 'source'"),
        ("{repo}/configs/generate.py:max_scenes=abc", 2, "max_scenes=abc"),
        ("{repo}/configs/generate.py:kitti", 2, "is not key=value"),
    ],
)
def test_bad_config_spec(capsys, tmp_path, spec, code, message):
    repo = pathlib.Path(__file__).resolve().parents[1]
    spec = spec.format(tmp=tmp_path, repo=repo)
    got, err = run(capsys, "generate", "--config", spec, "--out", tmp_path / "out", "--quiet")
    assert got == code and message in one_line(err)


# -- broken scenes: skipped with file and field, the rest written --------------------------------


def _truncate(path, keep=120):
    path.write_bytes(path.read_bytes()[:keep])


@pytest.mark.parametrize(
    ("name", "break_it", "file_part", "field_part"),
    [
        ("truncated_image", lambda d: _truncate(d / "image_2/000101.png"),
         "image_2/000101.png", "image"),
        ("text_as_image", lambda d: (d / "image_2/000101.png").write_text("not a png"),
         "image_2/000101.png", "image"),
        ("missing_image", lambda d: (d / "image_2/000101.png").unlink(),
         "image_2/000101.png", "image"),
        ("short_label_line", lambda d: (d / "label_2/000101.txt").write_text("Car 0 0 0 1 2\n"),
         "label_2/000101.txt", "line 1"),
        ("non_numeric_label", lambda d: (d / "label_2/000101.txt").write_text(
            (DUMMY_KITTI / "label_2/000101.txt").read_text() + "Car a b c d e f g h i j k l m n\n"),
         "label_2/000101.txt", "line"),
        ("binary_label", lambda d: (d / "label_2/000101.txt").write_bytes(b"\xff\xfe\x00\x81"),
         "label_2/000101.txt", ""),
        ("missing_calib", lambda d: (d / "calib/000101.txt").unlink(),
         "calib/000101.txt", "calib"),
        ("calib_without_p2", lambda d: (d / "calib/000101.txt").write_text("P0: 1 2 3\n"),
         "calib/000101.txt", "P2"),
        ("calib_bad_number", lambda d: (d / "calib/000101.txt").write_text(
            (DUMMY_KITTI / "calib/000101.txt").read_text().replace("1.200000e+02", "12O", 1)),
         "calib/000101.txt", "line"),
    ],
)  # fmt: skip
def test_broken_kitti_scene_is_a_counted_skip(capsys, kitti_copy, tmp_path, name, break_it,
                                              file_part, field_part):  # fmt: skip
    break_it(kitti_copy / "training")
    out = tmp_path / "out"
    code, _ = generate_kitti(capsys, kitti_copy, out)
    assert code == 0
    assert_skipped_with_valid_kept(out, "000101", file_part, field_part)


def test_truncated_image_is_reported_on_the_command_line(capsys, kitti_copy, tmp_path):
    _truncate(kitti_copy / "training/image_2/000102.png")
    code = cli.main(["generate", "--source", "kitti", "--root", str(kitti_copy), "--out",
                     str(tmp_path / "out"), "--quiet", "--no-sheet"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and "skipped 1 scenes" in printed and "000102.png" in printed


# -- mmdetection3d info files with bad entries ------------------------------------------------


def _kitti_info(sid: str) -> dict:
    """An mmdetection3d v1.x KITTI info for one of the dummy frames."""
    split = DUMMY_KITTI
    src = "000100" if sid == "000102" else sid
    calib = kitti_lib.read_calib(split / "calib" / f"{src}.txt")
    cam2img = np.eye(4)
    cam2img[:3, :4] = calib["P2"]
    instances = []
    for line in (split / "label_2" / f"{src}.txt").read_text().splitlines():
        f = line.split()
        h, w, length, x, y, z, ry = map(float, f[8:15])
        instances.append({
            "bbox": [float(v) for v in f[4:8]],
            "bbox_label_3d": KITTI_CLASSES.get(f[0], -1),
            "bbox_3d": [x, y, z, length, h, w, ry],
        })  # fmt: skip
    return {
        "sample_idx": int(sid),
        "images": {"CAM2": {"img_path": f"{sid}.png", "cam2img": cam2img}},
        "instances": instances,
    }


def _mmdet3d_root(tmp_path, data_list) -> pathlib.Path:
    root = tmp_path / "infos"
    root.mkdir()
    for sid in KITTI_IDS:
        src = "000100" if sid == "000102" else sid
        shutil.copy(DUMMY_KITTI / "image_2" / f"{src}.png", root / f"{sid}.png")
    with open(root / "kitti_infos.pkl", "wb") as f:
        pickle.dump({"metainfo": {"DATASET": "KITTI"}, "data_list": data_list}, f, protocol=4)
    return root


def _generate_mmdet3d(capsys, root, out):
    return run(capsys, "generate", "--source", "mmdet3d", "--root", root, "--out", out,
               "--quiet", "--no-sheet")  # fmt: skip


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (17, "data_list[1]"),
        ("a string", "data_list[1]"),
        (None, "data_list[1]"),
        ({}, "data_list[1].images"),
    ],
)
def test_non_dict_info_entry_skips_only_itself(capsys, tmp_path, bad, field):
    data_list = [_kitti_info("000100"), bad, _kitti_info("000102")]
    root = _mmdet3d_root(tmp_path, data_list)
    out = tmp_path / "out"
    code, _ = _generate_mmdet3d(capsys, root, out)
    assert code == 0
    summary = summary_of(out)
    skips = summary["scenes"]["skipped_scenes"]
    assert len(skips) == 1 and skips[0]["field"] == field
    assert skips[0]["file"].endswith("kitti_infos.pkl") and "kitti_infos.pkl" in skips[0]["reason"]
    assert scenes_written(out) == {"000100", "000102"}


def test_hostile_info_entry_skips_only_itself_and_runs_nothing(capsys, tmp_path):
    marker = tmp_path / "pwned"
    hostile = _kitti_info("000101")
    hostile["images"]["CAM2"]["cam2img"] = _Shell(marker)
    root = _mmdet3d_root(tmp_path, [_kitti_info("000100"), hostile, _kitti_info("000102")])
    out = tmp_path / "out"
    code, _ = _generate_mmdet3d(capsys, root, out)
    assert code == 0 and not marker.exists()
    skip = summary_of(out)["scenes"]["skipped_scenes"][0]
    assert skip["scene_id"] == "000101"
    assert skip["field"] == "data_list[1].images.CAM2.cam2img"
    assert "refused global" in skip["reason"] and "system" in skip["reason"]
    assert scenes_written(out) == {"000100", "000102"}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda i: i["images"]["CAM2"].__setitem__("cam2img", "not a matrix"), "data_list[1]"),
        (lambda i: i["images"]["CAM2"].__setitem__("cam2img", np.eye(2)), "data_list[1]"),
        (lambda i: i.__setitem__("instances", 5), "data_list[1]"),
        (lambda i: i["instances"][0].__setitem__("bbox_label_3d", "car"), "data_list[1]"),
    ],
)
def test_bad_value_in_info_entry_skips_only_that_scene(capsys, tmp_path, mutate, field):
    bad = _kitti_info("000101")
    mutate(bad)
    root = _mmdet3d_root(tmp_path, [_kitti_info("000100"), bad, _kitti_info("000102")])
    out = tmp_path / "out"
    code, _ = _generate_mmdet3d(capsys, root, out)
    assert code == 0
    skip = summary_of(out)["scenes"]["skipped_scenes"][0]
    assert skip["scene_id"] == "000101" and skip["field"].startswith(field)
    assert skip["file"].endswith("kitti_infos.pkl")
    assert scenes_written(out) == {"000100", "000102"}


def test_truncated_image_of_an_info_entry(capsys, tmp_path):
    root = _mmdet3d_root(tmp_path, [_kitti_info(s) for s in KITTI_IDS])
    _truncate(root / "000102.png")
    out = tmp_path / "out"
    code, _ = _generate_mmdet3d(capsys, root, out)
    assert code == 0
    assert_skipped_with_valid_kept(out, "000102", "000102.png", "image")


# -- ScanNet v1.0 infos ---------------------------------------------------------------------


def _scannet_info(sid: str, root: pathlib.Path) -> dict:
    name = f"posed_images/{sid}/00000.jpg"
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 48), (90, 90, 90)).save(root / name)
    (root / "points").mkdir(exist_ok=True)
    np.zeros((3, 6), np.float32).tofile(root / "points" / f"{sid}.bin")
    return {
        "point_cloud": {"num_features": 6, "lidar_idx": sid},
        "pts_path": f"points/{sid}.bin",
        "intrinsics": np.diag([50.0, 50.0, 1.0, 1.0]),
        "extrinsics": [np.eye(4)],
        "img_paths": [name],
        "annos": {"gt_num": 0},
    }


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ("drop", "intrinsics"),
        ("non_dict", "[1]"),
        ("no_id", "[1].point_cloud.lidar_idx"),
    ],
)
def test_bad_scannet_entry_skips_only_itself(tmp_path, bad, field):
    root = tmp_path / "scan"
    root.mkdir()
    infos = [_scannet_info(s, root) for s in ("s0", "s1", "s2")]
    if bad == "drop":
        del infos[1]["intrinsics"]
    elif bad == "non_dict":
        infos[1] = ["not", "a", "dict"]
    else:
        infos[1]["point_cloud"] = {}
    with open(root / "scannet_infos_train.pkl", "wb") as f:
        pickle.dump(infos, f)
    out = tmp_path / "out"
    summary = engine.generate(get_source("scannet", str(root)), out)
    skip = summary["scenes"]["skipped_scenes"]
    assert len(skip) == 1 and skip[0]["field"] == field, skip
    assert skip[0]["file"].endswith("scannet_infos_train.pkl")
    assert summary["scenes"]["done"] == 2
    assert summary_of(out)["scenes"]["skipped_scenes"] == skip


# -- resume ---------------------------------------------------------------------------------------


def test_resume_redoes_a_shard_whose_input_changed(capsys, kitti_copy, tmp_path):
    out = tmp_path / "out"
    image = kitti_copy / "training/image_2/000101.png"
    good = image.read_bytes()
    _truncate(image)
    assert generate_kitti(capsys, kitti_copy, out)[0] == 0
    assert summary_of(out)["scenes"]["skipped"] == 1
    # Unchanged: the finished shard is reused.
    assert generate_kitti(capsys, kitti_copy, out)[0] == 0
    assert summary_of(out)["shards"]["resumed"] == 1
    # The image is repaired: the shard is redone and the scene is in.
    image.write_bytes(good)
    os.utime(image, ns=(1, 10**18))
    assert generate_kitti(capsys, kitti_copy, out)[0] == 0
    summary = summary_of(out)
    assert summary["shards"]["resumed"] == 0 and summary["scenes"]["skipped"] == 0
    assert scenes_written(out) == set(KITTI_IDS)


def test_resume_notices_an_edited_label(capsys, kitti_copy, tmp_path):
    out = tmp_path / "out"
    assert generate_kitti(capsys, kitti_copy, out)[0] == 0
    label = kitti_copy / "training/label_2/000100.txt"
    label.write_text(label.read_text().splitlines()[0] + "\n")  # one object left
    assert generate_kitti(capsys, kitti_copy, out)[0] == 0
    summary = summary_of(out)
    assert summary["shards"]["resumed"] == 0


def test_resume_restarts_when_the_info_file_changes(capsys, tmp_path):
    root = _mmdet3d_root(tmp_path, [_kitti_info(s) for s in KITTI_IDS])
    out = tmp_path / "out"
    assert _generate_mmdet3d(capsys, root, out)[0] == 0
    manifest = (out / "shards" / "manifest.json").read_text()
    assert _generate_mmdet3d(capsys, root, out)[0] == 0
    assert summary_of(out)["shards"]["resumed"] == 1
    infos = root / "kitti_infos.pkl"
    data = pickle.loads(infos.read_bytes())
    data["data_list"][0]["instances"] = data["data_list"][0]["instances"][:1]
    infos.write_bytes(pickle.dumps(data, protocol=4))
    assert _generate_mmdet3d(capsys, root, out)[0] == 0
    assert summary_of(out)["shards"]["resumed"] == 0
    assert (out / "shards" / "manifest.json").read_text() != manifest


def test_torn_shard_state_is_redone(capsys, kitti_root, tmp_path):
    out = tmp_path / "out"
    assert generate_kitti(capsys, kitti_root, out)[0] == 0
    (state,) = (out / "shards").glob("*.state.json")
    state.write_text('{"summary": ')
    assert generate_kitti(capsys, kitti_root, out)[0] == 0
    assert summary_of(out)["shards"]["resumed"] == 0
    assert scenes_written(out) == set(KITTI_IDS)


# -- draw -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("", "holds no QA records"),
        ("{not json\n", ":1: not JSON"),
        ('{"id": 1}\n', ":1: not a QA record"),
        ("[1, 2]\n", ":1: not a QA record"),
        (b"\xff\xfe\x00\x00garbage", "not a UTF-8"),
    ],
)
def test_draw_on_a_bad_qa_file(capsys, tmp_path, kitti_root, content, message):
    qa = tmp_path / "qa.jsonl"
    if isinstance(content, bytes):
        qa.write_bytes(content)
    elif content is not None:
        qa.write_text(content)
    code, err = run(capsys, "draw", "--qa", qa, "--root", kitti_root, "--out", tmp_path / "s.png")
    assert code == 1 and message in one_line(err)


def test_draw_names_the_bad_line(capsys, tmp_path, kitti_root, qa_file):
    lines = qa_file.read_text().splitlines()
    bad = tmp_path / "qa.jsonl"
    bad.write_text("\n".join([lines[0], lines[1][: len(lines[1]) // 2], *lines[2:]]) + "\n")
    code, err = run(capsys, "draw", "--qa", bad, "--root", kitti_root, "--out", tmp_path / "s.png")
    assert code == 1 and f"{bad}:2: not JSON" in one_line(err)


def test_draw_on_a_folder_or_with_a_bad_root_or_count(capsys, tmp_path, kitti_root, qa_file):
    code, err = run(capsys, "draw", "--qa", tmp_path, "--root", kitti_root, "--out", tmp_path / "s")
    assert code == 1 and "is a folder" in one_line(err)
    code, err = run(capsys, "draw", "--qa", qa_file, "--root", tmp_path / "no", "--out",
                    tmp_path / "s.png")  # fmt: skip
    assert code == 1 and "--root" in one_line(err)
    code, err = run(capsys, "draw", "--qa", qa_file, "--root", kitti_root, "--out",
                    tmp_path / "s.png", "--count", "0")  # fmt: skip
    assert code == 2 and "--count must be at least 1" in one_line(err)


def test_draw_with_images_missing(capsys, tmp_path, qa_file):
    (tmp_path / "elsewhere").mkdir()
    code, err = run(capsys, "draw", "--qa", qa_file, "--root", tmp_path / "elsewhere",
                    "--out", tmp_path / "s.png")  # fmt: skip
    assert code == 1 and "cannot draw" in one_line(err)


def test_draw_works_on_a_good_file(capsys, tmp_path, kitti_root, qa_file):
    code, _ = run(
        capsys, "draw", "--qa", qa_file, "--root", kitti_root, "--out", tmp_path / "s.png"
    )
    assert code == 0 and (tmp_path / "s.png").is_file()


# -- export ---------------------------------------------------------------------------------------


def test_export_of_a_missing_dataset(capsys, tmp_path):
    code, err = run(capsys, "export", "--data-dir", tmp_path / "nowhere", "--out", tmp_path / "o")
    assert code == 1 and "--data-dir" in one_line(err)
    code, err = run(capsys, "export", "--data-dir", tmp_path, "--name", "spatial_qa/nope",
                    "--out", tmp_path / "o")  # fmt: skip
    assert code == 1 and "no built dataset spatial_qa/nope" in one_line(err)
    code, err = run(capsys, "export", "--data-dir", tmp_path, "--out", tmp_path / "o")
    assert code == 1 and "not a built dataset folder" in one_line(err)


def test_export_flags(capsys, tmp_path):
    (tmp_path / "taken").write_text("x")
    code, err = run(capsys, "export", "--data-dir", tmp_path, "--formats", "nope",
                    "--out", tmp_path / "o")  # fmt: skip
    assert code == 2 and "unknown format" in one_line(err)
    code, err = run(capsys, "export", "--data-dir", tmp_path, "--out", tmp_path / "taken")
    assert code == 1 and "is a file" in one_line(err)
    code, err = run(capsys, "export", "--data-dir", tmp_path, "--style", "alpaca",
                    "--out", tmp_path / "o")  # fmt: skip
    assert code == 2 and "invalid choice" in err


@pytest.fixture(scope="module")
def kitti_examples(kitti_root):
    """The examples `tfds build` would write for the intact KITTI folder, as a reader sees them."""
    spec = examples.SourceSpec.create("kitti", str(kitti_root))
    out = []
    for _, example in examples.generate_shard(spec, list(KITTI_IDS)):
        out.append(example)
    assert len(out) == 3
    return out


def test_export_skips_an_example_whose_image_is_truncated(tmp_path, kitti_examples):
    broken = [dict(e) for e in kitti_examples]
    broken[1]["image"] = bytes(broken[1]["image"])[:100]
    summary = export.export_examples(broken, tmp_path / "o", formats="1")
    assert summary.frames == 3 and len(summary.skipped) == 1
    assert summary.skipped[0]["field"] == "image" and "000101" in summary.skipped[0]["key"]
    written = {json.loads(line)["meta"]["scene_id"] for line in
               (tmp_path / "o" / "internvl.jsonl").read_text().splitlines()}  # fmt: skip
    assert written == {"000100", "000102"}


def test_export_skips_an_example_missing_a_field(tmp_path, kitti_examples):
    broken = [dict(e) for e in kitti_examples]
    del broken[0]["objects"]
    summary = export.export_examples(broken, tmp_path / "o", formats="1")
    assert len(summary.skipped) == 1 and summary.skipped[0]["field"] == "objects"
    assert summary.lines > 0


def test_tfds_build_counts_a_truncated_image(kitti_copy):
    _truncate(kitti_copy / "training/image_2/000100.png")
    spec = examples.SourceSpec.create("kitti", str(kitti_copy))
    skipped: list = []
    keys = [key for key, _ in examples.generate_shard(spec, list(KITTI_IDS), skipped=skipped)]
    assert len(keys) == 2 and all("000100" not in k for k in keys)
    assert [s["scene_id"] for s in skipped] == ["000100"] and skipped[0]["field"] == "image"


def test_builder_config_options_are_checked(tmp_path):
    from jax_spatial.datasets.spatial_qa import spatial_qa_dataset_builder as builder_lib
    from jax_spatial.errors import UserError

    config = builder_lib.SpatialQAConfig(
        name="t", source="procedural", set_options=("num_scenes=2", "views_per_scene=1")
    )
    assert builder_lib._options_from(config) == {"num_scenes": 2, "views_per_scene": 1}
    bad = builder_lib.SpatialQAConfig(name="t", source="procedural", set_options=("nope=1",))
    with pytest.raises(UserError, match="unknown procedural option 'nope'"):
        builder_lib._options_from(bad)
    path = tmp_path / "opts.json"
    path.write_text(json.dumps({"num_scenes": 3}))
    from_file = builder_lib.SpatialQAConfig(name="t", source="procedural", options_path=str(path))
    assert builder_lib._options_from(from_file) == {"num_scenes": 3}
    path.write_text("{oops")
    with pytest.raises(UserError, match="options_path"):
        builder_lib._options_from(from_file)


def test_image_bytes_verify():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    export.verify_image(buffer.getvalue())
    with pytest.raises(OSError):
        export.verify_image(buffer.getvalue()[:30])
    with pytest.raises(OSError):
        export.verify_image(b"")


def test_truncated_info_file_keeps_the_entries_before_the_cut(capsys, tmp_path):
    root = _mmdet3d_root(tmp_path, [_kitti_info(s) for s in KITTI_IDS])
    infos = root / "kitti_infos.pkl"
    infos.write_bytes(infos.read_bytes()[:-40])  # the cut falls inside the last entry
    out = tmp_path / "out"
    code, _ = _generate_mmdet3d(capsys, root, out)
    assert code == 0
    (skip,) = summary_of(out)["scenes"]["skipped_scenes"]
    assert skip["file"] == str(infos) and skip["field"] == "data_list[2:]"
    assert "truncated" in skip["reason"]
    assert scenes_written(out) == {"000100", "000101"}


def test_truncated_scannet_infos_keep_the_entries_before_the_cut(tmp_path):
    root = tmp_path / "scan"
    root.mkdir()
    infos = [_scannet_info(s, root) for s in ("s0", "s1", "s2")]
    blob = pickle.dumps(infos, protocol=4)
    (root / "scannet_infos_train.pkl").write_bytes(blob[:-30])
    source = get_source("scannet", str(root))
    assert source.scene_ids() == ["s0", "s1"]
    (lost,) = source.skipped_entries
    assert lost["field"] == "[2:]" and "truncated" in lost["reason"]
    summary = engine.generate(source, tmp_path / "out")
    assert summary["scenes"]["done"] == 2 and summary["scenes"]["skipped"] == 1


def test_truncated_frame_of_a_multi_frame_scene_drops_only_that_frame(tmp_path):
    root = tmp_path / "scan"
    root.mkdir()
    info = _scannet_info("s0", root)
    second = "posed_images/s0/00001.jpg"
    noise = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(root / second)  # noise: the header is a small part of the file
    info["img_paths"].append(second)
    info["extrinsics"].append(np.eye(4))
    _truncate(root / second, keep=(root / second).stat().st_size // 2)
    with open(root / "scannet_infos_train.pkl", "wb") as f:
        pickle.dump([info], f)
    summary = engine.generate(get_source("scannet", str(root)), tmp_path / "out")
    assert summary["scenes"]["done"] == 1 and summary["scenes"]["skipped"] == 0
    assert summary["frames"] == 1 and summary["scenes"]["frames_skipped"] == 1
    (dropped,) = summary["scenes"]["skipped_scenes"]
    assert dropped["frame_id"] == "00001" and dropped["field"] == "image"
    assert dropped["file"].endswith("00001.jpg") and "undecodable image" in dropped["reason"]


def _coco_root(tmp_path, images, annotations, categories=({"id": 1, "name": "cup"},)):
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    (root / "depth").mkdir()
    for im in images:
        if isinstance(im, dict) and "file_name" in im:
            Image.new("RGB", (32, 24), (200, 200, 200)).save(root / "val2017" / im["file_name"])
            depth = np.full((24, 32), 2000, np.uint16)
            Image.fromarray(depth).save(root / "depth" / (im["file_name"][:-4] + ".png"))
    data = {"images": list(images), "annotations": list(annotations),
            "categories": list(categories)}  # fmt: skip
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(data))
    return root


def _coco_image(i):
    return {"id": i, "file_name": f"{i:06d}.jpg", "width": 32, "height": 24}


def _coco_ann(i, image_id, **extra):
    square = [[2, 2, 12, 2, 12, 12, 2, 12]]
    return {"id": i, "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "bbox": [2, 2, 10, 10], "segmentation": square, **extra}  # fmt: skip


def test_coco_bad_entries_skip_only_themselves(tmp_path):
    images = [_coco_image(1), "not an image", {"file_name": "x.jpg"}, _coco_image(4)]
    annotations = [_coco_ann(1, 1), {"id": 2}, 7, _coco_ann(4, 4)]
    source = get_source("coco", str(_coco_root(tmp_path, images, annotations)), depth_dir="depth")
    assert source.scene_ids() == ["1", "4"]
    fields = sorted(e["field"] for e in source.skipped_entries)
    assert fields == ["annotations[1]", "annotations[2]", "images[1]", "images[2]"]
    assert all(e["file"].endswith("instances_val2017.json") for e in source.skipped_entries)
    assert any("missing key 'image_id'" in e["reason"] for e in source.skipped_entries)
    summary = engine.generate(source, tmp_path / "out")
    assert summary["scenes"]["done"] == 2
    assert len(summary["scenes"]["skipped_scenes"]) == 4


def test_coco_malformed_annotation_skips_its_image(tmp_path):
    images = [_coco_image(1), _coco_image(2)]
    annotations = [_coco_ann(1, 1), _coco_ann(2, 2, category_id="cup?")]
    source = get_source("coco", str(_coco_root(tmp_path, images, annotations)), depth_dir="depth")
    summary = engine.generate(source, tmp_path / "out")
    (skip,) = summary["scenes"]["skipped_scenes"]
    assert skip["scene_id"] == "2" and skip["field"] == "annotations[id=2]"
    assert skip["file"].endswith("instances_val2017.json")
    assert summary["scenes"]["done"] == 1


def test_visual_genome_bad_entries_skip_only_themselves(tmp_path):
    root = tmp_path / "vg"
    (root / "VG_100K").mkdir(parents=True)
    entries = [{"image_id": 1, "objects": []}, {"objects": []}, "junk", {"image_id": 4}]
    (root / "objects.json").write_text(json.dumps(entries))
    source = get_source("visual_genome", str(root))
    assert source.scene_ids() == ["1", "4"]
    assert sorted(e["field"] for e in source.skipped_entries) == ["[1]", "[2]"]
    assert all(e["file"].endswith("objects.json") for e in source.skipped_entries)


def test_torn_manifest_starts_over(capsys, kitti_root, tmp_path):
    out = tmp_path / "out"
    assert generate_kitti(capsys, kitti_root, out)[0] == 0
    (out / "shards" / "manifest.json").write_text('{"run": ')
    assert generate_kitti(capsys, kitti_root, out)[0] == 0
    assert summary_of(out)["shards"]["resumed"] == 0
    assert scenes_written(out) == set(KITTI_IDS)


def test_shards_path_taken_by_a_file(capsys, kitti_root, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "shards").write_text("x")
    code, err = generate_kitti(capsys, kitti_root, out)
    assert code == 1 and "shards is a file" in one_line(err)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_salvaged_entries_are_exactly_the_finished_ones(tmp_path, protocol):
    from jax_spatial.sources.safe_pickle import salvage_truncated

    def entry(i):
        return {"sample_idx": i, "m": np.eye(3) * i, "images": {"CAM2": {"img_path": f"{i}.png"}}}

    data = {"metainfo": {"DATASET": "KITTI"}, "data_list": [entry(i) for i in range(1200)]}
    blob = pickle.dumps(data, protocol=protocol)
    path = tmp_path / "cut.pkl"
    for fraction in np.linspace(0.05, 0.995, 25):
        path.write_bytes(blob[: int(len(blob) * fraction)])
        value, kept = salvage_truncated(path)
        entries = value["data_list"]
        assert kept == len(entries) and len(entries) <= 1200
        for i, got in enumerate(entries):
            assert got["sample_idx"] == i and got["images"]["CAM2"]["img_path"] == f"{i}.png"
            np.testing.assert_array_equal(got["m"], np.eye(3) * i)
    path.write_bytes(blob)
    assert salvage_truncated(path) is None  # not truncated: nothing to salvage
