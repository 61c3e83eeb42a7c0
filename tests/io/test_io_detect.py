import time

import pytest

from openhcs.io.detect import open_plate
from openhcs.io.errors import (
    CorruptImage,
    EmptyPlate,
    MixedShapes,
    PlateError,
    PlateNotFound,
    UnknownLayout,
)
from openhcs.io.plate import row_letters


def test_missing_folder(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(PlateNotFound, match=f"{missing} does not exist"):
        open_plate(missing)


def test_a_file_is_not_a_plate(tmp_path):
    path = tmp_path / "plate.tif"
    path.write_bytes(b"x")
    with pytest.raises(PlateNotFound, match=f"{path} is not a folder"):
        open_plate(path)


def test_errors_are_value_errors(tmp_path):
    with pytest.raises(ValueError):
        open_plate(tmp_path / "nope")
    assert issubclass(PlateNotFound, PlateError)


def test_empty_folder_is_an_unknown_layout(tmp_path):
    with pytest.raises(UnknownLayout, match=f"{tmp_path} .*folder is empty"):
        open_plate(tmp_path)


def test_unknown_layout_says_what_was_looked_for(tmp_path, tiff):
    tiff(tmp_path / "scans" / "image_001.tif")
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(UnknownLayout) as info:
        open_plate(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "TimePoint_N" in message and "Index.xml" in message and "empty" not in message


def test_both_layouts_at_once_is_refused(tmp_path, tiff):
    tiff(tmp_path / "TimePoint_1" / "A01_s1_w1.tif")
    tiff(tmp_path / "Images" / "r01c01f01p01-ch1sk1fk1fl1.tiff")
    with pytest.raises(UnknownLayout, match="both"):
        open_plate(tmp_path)


def test_recognised_layout_without_images_is_empty(tmp_path):
    (tmp_path / "TimePoint_1").mkdir()
    (tmp_path / "TimePoint_1" / "A01_s1_w1.csv").write_text("not an image")
    with pytest.raises(EmptyPlate, match=f"{tmp_path} .*imagexpress.*no images"):
        open_plate(tmp_path)


def test_corrupt_tiff_is_named(imagexpress_plate):
    bad = imagexpress_plate / "TimePoint_1" / "B02_s2_w1.tif"
    bad.write_bytes(b"\x00garbage that is not a TIFF header" * 10)
    with pytest.raises(CorruptImage, match=str(bad)):
        open_plate(imagexpress_plate)


def test_several_corrupt_tiffs_are_counted(imagexpress_plate):
    for name in ("A01_s2_w2.tif", "B02_s1_w1.tif"):
        (imagexpress_plate / "TimePoint_1" / name).write_bytes(b"II*\x00garbage")
    with pytest.raises(CorruptImage, match=r"A01_s2_w2\.tif.*and 1 more"):
        open_plate(imagexpress_plate)


def test_validate_false_skips_header_checks(imagexpress_plate):
    bad = imagexpress_plate / "TimePoint_1" / "B02_s2_w1.tif"
    bad.write_bytes(b"garbage")
    plate = open_plate(imagexpress_plate, validate=False)
    assert plate.image_shape == (8, 10)
    with pytest.raises(CorruptImage, match=str(bad)):
        plate.read(next(r for r in plate.records if r.path == bad))


def test_mixed_shapes_name_the_odd_file_and_expected_shape(imagexpress_plate, tiff):
    odd = tiff(imagexpress_plate / "TimePoint_1" / "A01_s1_w1.tif", shape=(9, 10))
    with pytest.raises(MixedShapes, match=rf"{odd} has shape \(9, 10\), expected \(8, 10\)"):
        open_plate(imagexpress_plate)


def test_rgb_image_is_refused(imagexpress_plate, tiff):
    rgb = tiff(imagexpress_plate / "TimePoint_1" / "A01_s1_w1.tif", shape=(8, 10, 3), dtype="uint8")
    with pytest.raises(CorruptImage, match=f"{rgb} is not a 2-D"):
        open_plate(imagexpress_plate)


def test_mixed_dtypes_open_with_the_stack_dtype(imagexpress_plate, tiff):
    tiff(imagexpress_plate / "TimePoint_1" / "A01_s1_w1.tif", dtype="float32")
    assert str(open_plate(imagexpress_plate).dtype) == "float32"


def test_relative_paths_become_absolute(imagexpress_plate, monkeypatch):
    monkeypatch.chdir(imagexpress_plate.parent)
    plate = open_plate(imagexpress_plate.name)
    assert plate.path == imagexpress_plate
    assert all(r.path.is_absolute() for r in plate.records)


def test_1536_well_plate_opens_quickly(tmp_path, tiff):
    for row in range(1, 33):
        for col in range(1, 49):
            tiff(tmp_path / "TimePoint_1" / f"{row_letters(row)}{col:02d}_s1_w1.tif", shape=(4, 4))
    start = time.perf_counter()
    plate = open_plate(tmp_path)  # validates all 1536 headers
    elapsed = time.perf_counter() - start
    assert len(plate.wells) == 1536
    assert plate.wells[:2] == ("A01", "A02")
    assert plate.wells[47:49] == ("A48", "B01")
    assert plate.wells[-1] == "AF48"
    assert plate.wells.index("AA01") == 26 * 48
    assert elapsed < 2.0, f"opening 1536 wells took {elapsed:.2f} s"
