import logging

import pytest
from io_plate_builders import INDEX_XML, opera_name

from openhcs.io.detect import open_plate
from openhcs.io.errors import EmptyPlate
from openhcs.io.formats.operaphenix import parse_index, parse_name


def test_components_from_file_names(opera_plate):
    plate = open_plate(opera_plate)
    assert plate.format == "operaphenix"
    assert plate.wells == ("A01", "B03")
    assert plate.sites == ("1", "2")
    assert plate.z_indices == ("1", "2")
    assert plate.channels == ("1", "2")
    assert plate.timepoints == ("1", "2")
    assert len(plate.records) == 32
    record = next(r for r in plate.records if r.key() == ("B03", "2", "1", "2", "2"))
    assert record.path.name == "r02c03f02p02-ch1sk2fk1fl1.tiff"
    assert (plate.read(record) == 23).all()


def test_index_xml_metadata(opera_plate):
    meta = open_plate(opera_plate).metadata
    assert meta["channel_names"] == {"1": "HOECHST 33342", "2": "Alexa 488"}
    assert (meta["plate_rows"], meta["plate_cols"]) == (16, 24)
    assert meta["plate_id"] == "P1"
    assert meta["metadata_file"] == "Index.xml"


def test_index_idx_xml_name(opera_plate):
    images = opera_plate / "Images"
    (images / "Index.xml").rename(images / "Index.idx.xml")
    assert open_plate(opera_plate).metadata["metadata_file"] == "Index.idx.xml"


def test_missing_index_is_a_warning(opera_plate, caplog):
    (opera_plate / "Images" / "Index.xml").unlink()
    with caplog.at_level(logging.WARNING, logger="openhcs.io"):
        plate = open_plate(opera_plate)
    assert len(plate.records) == 32
    assert plate.metadata == {}
    assert "no Index.xml" in caplog.text


def test_broken_index_is_a_warning(opera_plate, caplog):
    (opera_plate / "Images" / "Index.xml").write_text("<EvaluationInputData><Plates>")
    with caplog.at_level(logging.WARNING, logger="openhcs.io"):
        plate = open_plate(opera_plate)
    assert plate.metadata == {}
    assert "cannot parse" in caplog.text and "Index.xml" in caplog.text


def test_hidden_files_are_skipped_silently(opera_plate, caplog):
    (opera_plate / "Images" / "._r01c01f01p01-ch1sk1fk1fl1.tiff").write_bytes(b"resource fork")
    with caplog.at_level(logging.WARNING, logger="openhcs.io"):
        assert len(open_plate(opera_plate).records) == 32
    assert "ignored" not in caplog.text


def test_pointing_at_the_images_folder_works(opera_plate):
    plate = open_plate(opera_plate / "Images")
    assert plate.format == "operaphenix" and len(plate.records) == 32


def test_index_without_images_is_an_empty_plate(tmp_path):
    (tmp_path / "Images").mkdir()
    (tmp_path / "Images" / "Index.xml").write_text(INDEX_XML)
    with pytest.raises(EmptyPlate, match=f"{tmp_path}.*operaphenix.*no images"):
        open_plate(tmp_path)


def test_high_rows_and_columns(tmp_path, tiff):
    tiff(tmp_path / "Images" / opera_name(32, 48, 10, 1, 1, 1))
    tiff(tmp_path / "Images" / opera_name(16, 24, 2, 1, 1, 1))
    plate = open_plate(tmp_path)
    assert plate.wells == ("P24", "AF48")
    assert plate.sites == ("2", "10")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("r01c01f01p01-ch1sk1fk1fl1.tiff", ("A01", "1", "1", "1", "1")),
        ("R16C24F09P03-CH4SK12FK1FL1.TIF", ("P24", "9", "4", "3", "12")),
        ("r01c01f01p01-ch1sk1fk1fl1.png", None),
        ("A01_s1_w1.tif", None),
    ],
)
def test_parse_name(name, expected):
    parts = parse_name(name)
    if expected is None:
        assert parts is None
    else:
        assert (parts["well"], parts["site"], parts["channel"], parts["z"], parts["timepoint"]) == expected


def test_parse_index_without_namespace(tmp_path):
    index = tmp_path / "Index.xml"
    index.write_text(INDEX_XML.replace(' xmlns="http://www.perkinelmer.com/PEHH/HarmonyV5"', ""))
    assert parse_index(index)["channel_names"]["2"] == "Alexa 488"
