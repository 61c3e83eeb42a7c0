"""Output folders that cannot take the results: read-only, not a folder, full.

Runs go through a real server and real worker processes into real small file systems
(tmpfs mounts; skipped, with the reason, where mounting is not permitted). The user must
get an error naming the path and the cause, and no partial file may be left behind: no
``*.tmp``, and every TIFF and CSV that exists reads back whole.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import tifffile

from openhcs.processing import diagnostics as diag
from tests.core.plates import write_plate
from tests.proof.conftest import EventRecorder, plate_steps


def _mount_tmpfs(mount: Path, options: str) -> None:
    mount.mkdir(parents=True, exist_ok=True)
    if not shutil.which("mount"):
        pytest.skip("no mount command: cannot make a small real file system")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})"
        print(reason)
        pytest.skip(reason)


def _umount(mount: Path) -> None:
    subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True, timeout=30)


@pytest.fixture
def tiny_fs(tmp_path):
    """A 64 KiB tmpfs: writes fail with ENOSPC once it is full."""
    mount = tmp_path / "tiny"
    _mount_tmpfs(mount, "size=64k")
    yield mount
    _umount(mount)


@pytest.fixture
def readonly_fs(tmp_path):
    """A read-only tmpfs (root ignores permission bits, not a read-only file system)."""
    mount = tmp_path / "readonly"
    _mount_tmpfs(mount, "ro,size=64k")
    yield mount
    _umount(mount)



def _steps():
    return plate_steps((diag.passthrough, None, "copy"), (diag.mean_intensity, None, "measure"))


def _run(server, plate: Path, output_dir: Path) -> dict:
    with server.client() as client:
        return client.execute_pipeline(
            plate_id=str(plate), pipeline_steps=_steps(), timeout=120,
            config_params={"output_dir": str(output_dir), "num_workers": 1, "mode": "processes"})


def _all_text(result: dict) -> str:
    wells = (result.get("results") or {}).get("wells") or {}
    parts = [result.get("message") or "", result.get("error") or ""]
    parts += [w.get("error") or "" for w in wells.values()]
    return "\n".join(parts)


def assert_no_partial_files(root: Path) -> None:
    leftovers = [p for p in root.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".openhcs-probe")]
    assert not leftovers, f"partial files left behind: {leftovers}"
    for tif in root.rglob("*.tif*"):
        image = tifffile.imread(tif)  # raises on a truncated file
        assert image.size > 0, tif
    for table in root.rglob("*.csv"):
        with open(table, newline="") as fh:
            rows = list(csv.reader(fh))
        assert rows, f"empty CSV {table}"
        assert all(len(r) == len(rows[0]) for r in rows), f"ragged (half-written) CSV {table}"


def test_read_only_output_folder_is_a_clear_error_and_writes_nothing(server, tmp_path, readonly_fs):
    plate = write_plate(tmp_path / "plate", wells=("A01", "A02"), sites=1, channels=1)
    result = _run(server, plate, readonly_fs)
    assert result["status"] == "failed", result
    text = _all_text(result)
    assert str(readonly_fs) in text, text
    assert "read-only file system" in text.lower(), text
    assert list(readonly_fs.iterdir()) == []
    assert server.ping() is not None


def test_output_path_below_a_file_is_a_clear_error(server, tmp_path):
    """Needs no privileges: a regular file where the output folder's parent should be."""
    plate = write_plate(tmp_path / "plate", wells=("A01",), sites=1, channels=1)
    blocker = tmp_path / "results-file"
    blocker.write_text("not a folder")
    result = _run(server, plate, blocker / "out")
    assert result["status"] == "failed", result
    text = _all_text(result)
    assert str(blocker) in text and ("not a directory" in text.lower() or "not a folder" in text.lower()), text
    assert blocker.read_text() == "not a folder"
    assert not list(tmp_path.glob("**/*.tmp"))


def _fill_disk_run(server, tmp_path, mount: Path):
    rec = EventRecorder()
    wells = ("A01", "A02", "A03", "B01", "B02", "B03")
    plate = write_plate(tmp_path / "plate", wells=wells, sites=2, channels=1, size=96)
    with server.client(progress_callback=rec) as client:
        result = client.execute_pipeline(
            plate_id=str(plate), pipeline_steps=_steps(), timeout=120,
            config_params={"output_dir": str(mount), "num_workers": 1, "mode": "processes"})
    return plate, wells, rec, result


def test_full_disk_fails_wells_with_the_path_and_cause_and_leaves_no_partial_files(server, tmp_path, tiny_fs):
    plate, wells, rec, result = _fill_disk_run(server, tmp_path, tiny_fs)
    assert result["status"] == "failed", result
    ends = {e["well_id"]: e for e in rec.events
            if e.get("type") == "progress" and e.get("step") == "pipeline" and e.get("status") != "started"}
    assert set(ends) == set(wells), f"wells without a final event: {set(wells) - set(ends)}"
    failed = {w: e["metadata"]["error"] for w, e in ends.items() if e["status"] == "failed"}
    assert failed, "the 64 KiB disk never filled up: the test proves nothing"
    for well, error in failed.items():
        assert "disk full" in error.lower(), (well, error)
        assert f"{tiny_fs}/" in error and error.split("cannot write ", 1)[1].startswith(str(tiny_fs)), (well, error)
    run_error = _all_text(result)
    assert "disk full" in run_error.lower() and str(tiny_fs) in run_error, run_error
    assert_no_partial_files(tiny_fs)
    stat = os.statvfs(tiny_fs)
    print(f"{len(failed)} of {len(wells)} wells failed on the full disk; "
          f"{stat.f_bavail * stat.f_frsize} bytes left")
    # the server is fine, and the same plate completes where there is room
    roomy = tmp_path / "roomy"
    again = _run(server, plate, roomy)
    assert again["status"] == "complete", again
    assert_no_partial_files(roomy)


def test_full_disk_run_result_keeps_every_wells_outcome(server, tmp_path, tiny_fs):
    """The final response must still say which wells completed and which failed and why
    (docs/REQUESTS-proof.md #4: a failed summary.csv write discards every well outcome)."""
    _plate, wells, _rec, result = _fill_disk_run(server, tmp_path, tiny_fs)
    outcomes = (result.get("results") or {}).get("wells") or {}
    assert set(outcomes) == set(wells), f"per-well outcomes lost; the run only says: {result['message']!r}"
    assert any(o["status"] == "failed" and "disk full" in (o.get("error") or "") for o in outcomes.values())


def test_output_folder_turning_read_only_mid_run_fails_the_rest_cleanly(server, tmp_path):
    """A file server that goes read-only during a run (remount): wells written before
    keep their files, wells after fail naming the path and the cause, nothing partial."""
    from openhcs.processing import diagnostics as diag
    from tests.core.plates import MARKER

    mount = tmp_path / "nas"
    _mount_tmpfs(mount, "size=4m")
    try:
        wells = ("A01", "A02", "A03", "B01")
        plate = write_plate(tmp_path / "plate", wells=wells, sites=1, channels=1, marked=("A03",))
        steps = plate_steps((diag.sleep_step, {"seconds": 60, "marker": MARKER}, "slow"),
                            (diag.passthrough, None, "copy"))
        rec = EventRecorder()
        with server.client(progress_callback=rec) as client:
            eid = client.submit_pipeline(plate_id=str(plate), pipeline_steps=steps, config_params={
                "output_dir": str(mount), "num_workers": 1, "mode": "processes"})["execution_id"]
            rec.wait_for(lambda e: e.get("well_id") == "A03" and e.get("step") == "slow"
                         and e.get("status") == "started", 60, "A03 sleeping")
            done = subprocess.run(["mount", "-o", "remount,ro", str(mount)], capture_output=True, text=True,
                                  timeout=30)
            assert done.returncode == 0, done.stderr
            client.cancel_execution(eid, axis_ids=["A03"])  # wake A03 up; A03 ends cancelled
            result = client.wait_for_completion(eid, timeout=120)
        wells_out = result["results"]["wells"]
        assert {w: wells_out[w]["status"] for w in ("A01", "A02")} == {"A01": "complete", "A02": "complete"}
        assert wells_out["A03"]["status"] == "cancelled"
        error = wells_out["B01"]["error"] or ""
        assert wells_out["B01"]["status"] == "failed" and "read-only file system" in error.lower(), wells_out["B01"]
        assert str(mount) in error
        assert_no_partial_files(mount)
        assert len(list((mount / "plate" / "images").rglob("*.tif"))) >= 2  # A01 and A02 kept theirs
    finally:
        _umount(mount)
