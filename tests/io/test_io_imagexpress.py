import logging

import pytest

from openhcs.io.detect import open_plate
from openhcs.io.errors import DuplicateImage
from openhcs.io.formats.imagexpress import parse_htd, parse_name


def test_components_shape_and_metadata(imagexpress_plate):
    plate = open_plate(imagexpress_plate)
    assert plate.format == "imagexpress"
    assert plate.path == imagexpress_plate
    assert plate.wells == ("A01", "B02")
    assert plate.sites == ("1", "2")
    assert plate.channels == ("1", "2")
    assert plate.z_indices == ("1",)
    assert plate.timepoints == ("1",)
    assert plate.image_shape == (8, 10)
    assert str(plate.dtype) == "uint16"
    meta = plate.metadata
    assert (meta["site_cols"], meta["site_rows"], meta["n_channels"]) == (2, 1, 2)
    assert (meta["plate_cols"], meta["plate_rows"]) == (24, 16)
    assert meta["channel_names"] == {"1": "DAPI", "2": "FITC"}
    assert meta["description"] == "screen 7, replicate 2"
    assert meta["htd"]["SiteSelection1"] == ["TRUE", "TRUE"]


def test_ignores_thumbnails_non_images_and_other_folders(imagexpress_plate, tiff):
    tp = imagexpress_plate / "TimePoint_1"
    tiff(tp / "A01_s1_w1_thumb.tif")
    tiff(tp / "A01_s1_w1_thumb6A3B1C2D-0000-0000-0000-000000000000.tif")
    for name in ("A01_s1_w1.csv", "notes.txt", "A01_s1_w1.xml"):
        (tp / name).write_text("x")
    (imagexpress_plate / "results.csv").write_text("a,b\n")
    (tp / "._A01_s1_w1.tif").write_bytes(b"Mac resource fork")  # AppleDouble, not a TIFF
    tiff(imagexpress_plate / "openhcs_output" / "TimePoint_1" / "C05_s1_w1.tif")
    plate = open_plate(imagexpress_plate)
    assert len(plate.records) == 8
    assert plate.wells == ("A01", "B02")


def test_tiff_suffix_case_and_missing_parts(tmp_path, tiff):
    tp = tmp_path / "TimePoint_1"
    tiff(tp / "A01.TIF")                     # no site, no wavelength
    tiff(tp / "a02_s3.tiff")                  # lower-case row, .tiff
    tiff(tp / "MyPlate_B01_s1_w2.Tif")        # plate-name prefix
    tiff(tp / "B02_s1_w1E4E9C0C1-1A2B-3C4D-5E6F-0123456789AB.tif")  # MetaXpress GUID
    plate = open_plate(tmp_path)
    keys = {r.key() for r in plate.records}
    assert keys == {
        ("A01", "1", "1", "1", "1"),
        ("A02", "3", "1", "1", "1"),
        ("B01", "1", "2", "1", "1"),
        ("B02", "1", "1", "1", "1"),
    }


def test_timepoint_and_zstep_folders(tmp_path, tiff):
    for t in (1, 2):
        for z in (1, 2, 3):
            tiff(tmp_path / f"TimePoint_{t}" / f"ZStep_{z}" / "A01_s1_w1.tif", value=t * 10 + z)
    plate = open_plate(tmp_path)
    assert plate.timepoints == ("1", "2")
    assert plate.z_indices == ("1", "2", "3")
    record = next(r for r in plate.records if r.z == "3" and r.timepoint == "2")
    assert record.path.parent.name == "ZStep_3"
    assert (plate.read(record) == 23).all()


def test_z_suffix_style(tmp_path, tiff):
    for z in (1, 2, 10):
        tiff(tmp_path / "TimePoint_1" / f"A01_s1_w1_z{z}.tif")
    plate = open_plate(tmp_path)
    assert plate.z_indices == ("1", "2", "10")


def test_sites_and_wells_sort_naturally(tmp_path, tiff):
    for site in range(1, 12):
        tiff(tmp_path / "TimePoint_1" / f"A01_s{site}_w1.tif")
    for well in ("P24", "AA01", "A10", "A02"):
        tiff(tmp_path / "TimePoint_1" / f"{well}_s1_w1.tif")
    plate = open_plate(tmp_path)
    assert plate.sites == tuple(str(s) for s in range(1, 12))
    assert plate.wells == ("A01", "A02", "A10", "P24", "AA01")


def test_images_at_the_plate_root_are_timepoint_one(tmp_path, tiff):
    tiff(tmp_path / "A01_s1_w1.tif")
    plate = open_plate(tmp_path)
    assert plate.format == "imagexpress"
    assert plate.records[0].timepoint == "1"


def test_two_files_for_one_image_are_refused(tmp_path, tiff):
    tiff(tmp_path / "TimePoint_1" / "A01_s1_w1.tif")
    tiff(tmp_path / "TimePoint_1" / "A01_s1_w1.TIFF")
    with pytest.raises(DuplicateImage, match=r"A01_s1_w1\.(tif|TIFF) and .*A01_s1_w1"):
        open_plate(tmp_path)


def test_odd_tiff_names_are_skipped_with_a_warning(imagexpress_plate, tiff, caplog):
    tiff(imagexpress_plate / "TimePoint_1" / "overview.tif")
    with caplog.at_level(logging.WARNING, logger="openhcs.io"):
        plate = open_plate(imagexpress_plate)
    assert len(plate.records) == 8
    assert "overview.tif" in caplog.text


@pytest.mark.parametrize(
    "name, parts",
    [
        ("A01_s1_w1.tif", ("A01", "1", "1", "")),
        ("b12_s10_w3_z4.TIFF", ("B12", "10", "3", "4")),
        ("AF48_s2.tif", ("AF48", "2", "1", "")),
        ("A1_s01_w01.tif", ("A01", "1", "1", "")),
    ],
)
def test_parse_name(name, parts):
    assert tuple(parse_name(name).values()) == parts


@pytest.mark.parametrize("name", ["A01_s1_w1_thumb.tif", "overview.tif", "A01_s1_w1.png"])
def test_parse_name_rejects(name):
    assert parse_name(name) is None


def test_unreadable_htd_gives_empty_metadata(tmp_path):
    assert parse_htd(tmp_path / "missing.HTD") == {}
