import csv

from openhcs.frontend.results import build_heatmap, heat_colour, read_summary, split_well


def _write_summary(folder, rows):
    fields = ["well", "status", "duration_s", "object_count", "mean_area", "error"]
    with open(folder / "summary.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fields)
        writer.writeheader()
        writer.writerows(rows)


def _rows():
    return [
        {"well": "A01", "status": "complete", "duration_s": 2.5, "object_count": 58, "mean_area": 193.5, "error": ""},
        {"well": "A02", "status": "complete", "duration_s": 2.3, "object_count": 15, "mean_area": 167.7, "error": ""},
        {"well": "B01", "status": "complete", "duration_s": 2.5, "object_count": 40, "mean_area": 180.0, "error": ""},
        {"well": "B03", "status": "failed", "duration_s": 0.1, "object_count": "", "mean_area": "", "error": "boom"},
    ]


def test_summary_table_lists_numeric_measurements_and_prefers_object_count(tmp_path):
    _write_summary(tmp_path, _rows())
    table = read_summary(tmp_path)
    assert table.columns[0] == "well" and len(table.rows) == 4
    assert table.measurements() == ["duration_s", "object_count", "mean_area"]
    assert table.default_measurement() == "object_count"
    assert table.values("object_count") == {"A01": 58.0, "A02": 15.0, "B01": 40.0}


def test_missing_summary_gives_none(tmp_path):
    assert read_summary(tmp_path) is None


def test_heatmap_is_laid_out_as_the_plate_rows_a_and_columns_1(tmp_path):
    _write_summary(tmp_path, _rows())
    heat = build_heatmap(read_summary(tmp_path), "object_count")
    assert heat.rows == ["A", "B"] and heat.cols == [1, 2, 3]
    assert heat.grid() == [[58.0, 15.0, None], [40.0, None, None]]
    assert (heat.vmin, heat.vmax) == (15.0, 58.0)
    assert heat.colour("A", 1) == heat_colour(1.0) == "#fde725"  # highest: viridis yellow
    assert heat.colour("A", 2) == heat_colour(0.0) == "#440154"  # lowest: viridis purple
    assert heat.colour("B", 2) is None  # no value: empty cell


def test_heatmap_takes_the_plate_size_from_its_layout_and_the_chosen_measurement(tmp_path):
    _write_summary(tmp_path, _rows())
    heat = build_heatmap(read_summary(tmp_path), "mean_area", plate_wells=["A01", "D06"])
    assert heat.rows == ["A", "B", "C", "D"] and heat.cols == [1, 2, 3, 4, 5, 6]
    assert heat.value("A", 2) == 167.7 and heat.measurement == "mean_area"


def test_well_names_with_and_without_zero_padding_land_in_the_same_cell(tmp_path):
    rows = _rows()
    rows[0]["well"] = "A1"
    _write_summary(tmp_path, rows)
    heat = build_heatmap(read_summary(tmp_path), "object_count")
    assert heat.value("A", 1) == 58.0
    assert split_well("AB12") == ("AB", 12) and split_well("site1") is None
