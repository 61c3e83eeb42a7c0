import csv
import errno
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tifffile

from openhcs.io.errors import OutputError
from openhcs.io.storage import atomic_write, output_error, write_csv_atomic, write_tiff_atomic


class Boom(RuntimeError):
    pass


def _can_create_in(folder: Path) -> bool:
    probe = folder / ".probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True


@pytest.fixture
def unwritable_dir(tmp_path):
    """A folder where creating a file really fails with permission denied."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if not _can_create_in(folder):
            yield folder
            return
        # root ignores mode bits; sysfs refuses new files even to root
        sysfs = Path("/sys/kernel")
        if sysfs.is_dir() and not _can_create_in(sysfs):
            yield sysfs
            return
        pytest.skip("no folder here refuses file creation (root without sysfs)")
    finally:
        folder.chmod(0o700)


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 64 KiB tmpfs, so writes fail with ENOSPC (needs mount rights)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_writes_the_file_and_leaves_no_temp(tmp_path):
    dest = tmp_path / "out.bin"
    with atomic_write(dest) as handle:
        handle.write(b"hello")
    assert dest.read_bytes() == b"hello"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_new_file_gets_normal_permissions_not_temp_file_ones(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    dest = tmp_path / "out.txt"
    with atomic_write(dest, "w") as handle:
        handle.write("x")
    assert dest.stat().st_mode & 0o777 == 0o666 & ~umask


def test_existing_file_keeps_its_permissions(tmp_path):
    dest = tmp_path / "out.txt"
    dest.write_text("old")
    dest.chmod(0o640)
    with atomic_write(dest, "w") as handle:
        handle.write("new")
    assert dest.read_text() == "new"
    assert dest.stat().st_mode & 0o777 == 0o640


def test_temp_file_is_hidden_in_the_same_folder_until_done(tmp_path):
    dest = tmp_path / "result.csv"
    with atomic_write(dest, "w") as handle:
        handle.write("partial")
        handle.flush()
        names = os.listdir(tmp_path)
        assert not dest.exists()
        assert len(names) == 1
        assert names[0].startswith(".") and names[0].endswith(".tmp")
        assert Path(handle.name).parent == tmp_path
    assert dest.read_text() == "partial"


def test_error_midway_leaves_no_file(tmp_path):
    dest = tmp_path / "out.bin"
    with pytest.raises(Boom):
        with atomic_write(dest) as handle:
            handle.write(b"x" * 100_000)
            raise Boom("writer failed")
    assert os.listdir(tmp_path) == []


def test_interrupt_midway_leaves_no_file(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(tmp_path / "out.bin") as handle:
            handle.write(b"x")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_error_midway_keeps_the_old_file(tmp_path):
    dest = tmp_path / "out.txt"
    dest.write_text("previous result")
    with pytest.raises(Boom):
        with atomic_write(dest, "w") as handle:
            handle.write("half of a new res")
            raise Boom
    assert dest.read_text() == "previous result"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_creates_parent_folders(tmp_path):
    dest = tmp_path / "a" / "b" / "c.bin"
    with atomic_write(dest) as handle:
        handle.write(b"1")
    assert dest.read_bytes() == b"1"


def test_text_mode_is_utf8(tmp_path):
    dest = tmp_path / "t.txt"
    with atomic_write(dest, "w") as handle:
        handle.write("µm\n")
    assert dest.read_bytes() == "µm\n".encode()


def test_refuses_non_write_modes(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "x", "a"):
            pass


def test_parent_that_is_a_file_is_an_output_error(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("I am a file")
    dest = blocker / "well_A01.csv"
    with pytest.raises(OutputError, match=f"{dest}.*not a folder"):
        write_csv_atomic(dest, [{"a": 1}])
    with pytest.raises(OutputError, match="not a folder"):
        write_csv_atomic(blocker / "deeper" / "x.csv", [{"a": 1}])
    assert blocker.read_text() == "I am a file"


def test_destination_that_is_a_folder_is_an_output_error(tmp_path):
    dest = tmp_path / "out.tif"
    dest.mkdir()
    with pytest.raises(OutputError, match=f"{dest}.*is a folder"):
        write_tiff_atomic(dest, np.zeros((2, 2), np.uint8))
    assert os.listdir(tmp_path) == ["out.tif"]


@pytest.mark.parametrize("relative", ["out.csv", "sub/out.csv"])
def test_permission_denied_is_an_output_error(unwritable_dir, relative):
    dest = unwritable_dir / relative
    with pytest.raises(OutputError, match=f"{dest}.*permission denied"):
        write_csv_atomic(dest, [{"a": 1}])


def test_full_disk_is_an_output_error_and_leaves_nothing(tiny_disk):
    dest = tiny_disk / "big.tif"
    with pytest.raises(OutputError, match=f"{dest}.*disk full"):
        write_tiff_atomic(dest, np.zeros((512, 512), np.uint16))
    assert os.listdir(tiny_disk) == []


def test_full_disk_during_text_writes(tiny_disk):
    dest = tiny_disk / "measurements.csv"
    rows = [{"well": "A01", "note": "x" * 1000} for _ in range(200)]
    with pytest.raises(OutputError, match=f"{dest}.*disk full"):
        write_csv_atomic(dest, rows)
    assert os.listdir(tiny_disk) == []
    write_csv_atomic(dest, rows[:2])  # the space was given back
    assert len(_read_csv(dest)) == 3


@pytest.mark.parametrize(
    "code, cause",
    [(errno.ENOSPC, "disk full"), (errno.EACCES, "permission denied"),
     (errno.EROFS, "read-only file system"), (errno.EIO, "Input/output error")],
)
def test_output_error_names_path_and_cause(code, cause):
    error = output_error(Path("/data/out.csv"), OSError(code, os.strerror(code)))
    assert isinstance(error, OutputError)
    assert "/data/out.csv" in str(error) and cause in str(error)


def test_tiff_round_trip_uncompressed(tmp_path):
    image = np.arange(12, dtype=np.uint16).reshape(3, 4)
    dest = write_tiff_atomic(tmp_path / "img.tif", image)
    with tifffile.TiffFile(dest) as tif:
        assert tif.pages[0].compression == 1  # COMPRESSION.NONE
        np.testing.assert_array_equal(tif.asarray(), image)
    stack = np.stack([image, image + 1])
    np.testing.assert_array_equal(tifffile.imread(write_tiff_atomic(tmp_path / "s.tif", stack)), stack)


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_csv_fieldnames_are_the_union_in_first_seen_order(tmp_path):
    rows = [{"well": "A01", "area": 10}, {"well": "A02", "count": 3, "area": 12.5}]
    dest = write_csv_atomic(tmp_path / "m.csv", rows)
    assert _read_csv(dest) == [["well", "area", "count"], ["A01", "10", ""], ["A02", "12.5", "3"]]


def test_csv_explicit_fieldnames(tmp_path):
    dest = write_csv_atomic(tmp_path / "m.csv", [{"b": 2, "a": 1}], fieldnames=["a", "b"])
    assert _read_csv(dest) == [["a", "b"], ["1", "2"]]


def test_csv_row_with_unknown_key_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="zzz"):
        write_csv_atomic(tmp_path / "m.csv", [{"a": 1, "zzz": 2}], fieldnames=["a"])
    assert os.listdir(tmp_path) == []


def test_csv_with_no_rows_is_empty(tmp_path):
    assert (write_csv_atomic(tmp_path / "m.csv", [])).read_text() == ""
    assert _read_csv(write_csv_atomic(tmp_path / "h.csv", [], fieldnames=["a"])) == [["a"]]
