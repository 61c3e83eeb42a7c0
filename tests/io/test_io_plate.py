import json
import pickle

import numpy as np
import pytest

from openhcs.io.detect import open_plate
from openhcs.io.errors import CorruptImage
from openhcs.io.plate import (
    ImageRecord,
    Plate,
    natural_key,
    natural_sorted,
    row_letters,
    well_name,
)


def test_natural_order_of_numbers_and_wells():
    assert natural_sorted(["10", "2", "1"]) == ("1", "2", "10")
    assert natural_sorted(["AA01", "P24", "A10", "A2", "B01"]) == ("A2", "A10", "B01", "P24", "AA01")
    assert natural_key("Z48") < natural_key("AA01") < natural_key("AF48")
    assert natural_sorted(["ch10", "ch9"]) == ("ch9", "ch10")


@pytest.mark.parametrize("row, letters", [(1, "A"), (16, "P"), (26, "Z"), (27, "AA"), (32, "AF")])
def test_row_letters(row, letters):
    assert row_letters(row) == letters


def test_well_name_pads_columns_and_uppercases():
    assert well_name(2, 3) == "B03"
    assert well_name("a", "7") == "A07"
    with pytest.raises(ValueError, match="rows start at 1"):
        row_letters(0)


def test_plate_pickles_without_pixel_data(imagexpress_plate, tiff):
    for channel in (1, 2):  # large images, so pixel data would dominate a pickle
        tiff(imagexpress_plate / "TimePoint_1" / f"C03_s1_w{channel}.tif", shape=(512, 512))
    for path in (imagexpress_plate / "TimePoint_1").glob("[AB]*.tif"):
        tiff(path, shape=(512, 512))
    plate = open_plate(imagexpress_plate)
    blob = pickle.dumps(plate)
    assert len(blob) < 512 * 512 * 2  # smaller than a single image
    clone = pickle.loads(blob)
    assert clone == plate
    assert clone.wells == ("A01", "B02", "C03")
    assert clone.records_for("C03") == plate.records_for("C03")
    assert clone.read(clone.records_for("C03")[0]).shape == (512, 512)


def test_read_returns_the_file_pixels(imagexpress_plate):
    plate = open_plate(imagexpress_plate)
    record = next(r for r in plate.records if r.key() == ("B02", "2", "1", "1", "1"))
    image = plate.read(record)
    assert image.ndim == 2 and image.dtype == np.uint16
    assert (image == 7).all()  # seventh file written by the fixture


def test_records_for_unknown_well_names_it(imagexpress_plate):
    plate = open_plate(imagexpress_plate)
    with pytest.raises(KeyError, match="H12"):
        plate.records_for("H12")


def test_records_are_sorted_and_grouped(imagexpress_plate):
    plate = open_plate(imagexpress_plate)
    a01 = plate.records_for("A01")
    assert [(r.site, r.channel) for r in a01] == [("1", "1"), ("1", "2"), ("2", "1"), ("2", "2")]
    assert all(isinstance(r, ImageRecord) and r.path.is_absolute() for r in plate.records)


def test_summary_is_json(imagexpress_plate):
    summary = json.loads(json.dumps(open_plate(imagexpress_plate).summary()))
    assert summary["format"] == "imagexpress"
    assert summary["n_images"] == 8 and summary["n_wells"] == 2
    assert summary["image_shape"] == [8, 10] and summary["dtype"] == "uint16"
    assert summary["metadata"]["channel_names"] == {"1": "DAPI", "2": "FITC"}


def test_read_of_a_file_corrupted_after_opening_names_it(imagexpress_plate):
    plate = open_plate(imagexpress_plate)
    record = plate.records_for("B02")[-1]
    record.path.write_bytes(b"not a tiff at all")
    with pytest.raises(CorruptImage, match=record.path.name):
        plate.read(record)


def test_contract_names_are_importable():
    """Every name docs/CONTRACTS.md promises for openhcs.io exists."""
    import importlib

    promised = {
        "openhcs.io.errors": ["PlateError", "PlateNotFound", "EmptyPlate", "UnknownLayout",
                              "CorruptImage", "MixedShapes", "OutputError"],
        "openhcs.io.plate": ["ImageRecord", "Plate"],
        "openhcs.io.detect": ["open_plate"],
        "openhcs.io.storage": ["atomic_write", "write_tiff_atomic", "write_csv_atomic"],
    }
    for module, names in promised.items():
        loaded = importlib.import_module(module)
        missing = [n for n in names if not hasattr(loaded, n)]
        assert not missing, f"{module} lacks {missing}"
    from openhcs.io import errors

    for name in promised["openhcs.io.errors"][1:]:
        assert issubclass(getattr(errors, name), errors.PlateError)
    assert issubclass(errors.PlateError, ValueError)
    assert [f for f in ImageRecord.__dataclass_fields__] == [
        "well", "site", "channel", "z", "timepoint", "path"]


def test_plate_built_by_hand_normalises_its_fields(tmp_path):
    record = ImageRecord("B01", "1", "1", "1", "1", tmp_path / "b.tif")
    first = ImageRecord("A01", "1", "1", "1", "1", tmp_path / "a.tif")
    plate = Plate(path=str(tmp_path), format="imagexpress", records=[record, first],
                  image_shape=[4, 5], dtype="uint8")
    assert plate.path == tmp_path and plate.image_shape == (4, 5)
    assert plate.dtype == np.uint8 and plate.records == (first, record)
    assert plate.wells == ("A01", "B01") and plate.metadata == {}
    assert pickle.loads(pickle.dumps(plate)).wells == ("A01", "B01")
