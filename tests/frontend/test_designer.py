"""The designer model without a UI: editing, the four pattern kinds, forms, validation
against a real plate, preview on one site, and the exact save/open/save round trip."""

from __future__ import annotations

import pytest

from openhcs.core.steps import FunctionStep
from openhcs.frontend.designer import DesignerModel
from openhcs.frontend.designer_catalog import Catalog
from openhcs.frontend.designer_check import COMPONENTS, KEYS, NAME, PARAMS, PLATE
from openhcs.frontend.designer_params import ParamError
from openhcs.frontend.plates import read_plate
from openhcs.processing import denoise, normalize_percentile, subtract_background
from tests.frontend.fixtures import demo_plate


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    return read_plate(demo_plate(tmp_path_factory.mktemp("designer")))


@pytest.fixture
def model(plate):
    return DesignerModel(plate=plate)


def test_default_analysis_validates_and_round_trips_byte_for_byte(model, tmp_path):
    model.new_default()
    assert [d.display_name for d in model.steps] == ["flatfield", "background", "stitch", "measure"]
    assert [d.kind for d in model.steps] == ["function", "function with options", "function with options",
                                             "function with options"]
    assert model.validate() == []
    first = model.save(tmp_path / "a.py").read_bytes()
    reopened = DesignerModel(plate=model.plate)
    reopened.open(tmp_path / "a.py")
    second = reopened.save(tmp_path / "b.py").read_bytes()
    assert first == second
    assert reopened.function_steps() == model.function_steps()


def test_build_three_steps_with_every_pattern_kind_and_round_trip(model, tmp_path):
    model.new_empty()
    events = []
    model.changed.connect(lambda topic, detail=None: events.append(topic))
    a = model.add_step("normalize_percentile")
    b = model.add_step("subtract_background")
    c = model.add_step("denoise")
    assert (a, b, c) == (0, 1, 2) and "steps" in events
    model.add_to_chain(a, "denoise")                      # chain
    model.set_param(b, "radius", "12")                    # (callable, kwargs)
    assert model.make_per_component(c) == ["1", "2"]      # per-channel dict
    model.set_function(c, "normalize_percentile", key="2")
    model.set_param(c, "sigma", "2.5", key="1")
    steps = model.function_steps()
    assert steps[0].func == [normalize_percentile, denoise]
    assert steps[1].func == (subtract_background, {"radius": 12})
    assert steps[2].func == {"1": (denoise, {"sigma": 2.5}), "2": normalize_percentile}
    assert [d.kind for d in model.steps] == ["chain", "function with options", "per-component"]
    assert model.validate() == []
    code = model.save(tmp_path / "p.py").read_text()
    assert '"1": (denoise, {"sigma": 2.5})' in code and "from openhcs.processing import" in code
    again = DesignerModel(plate=model.plate)
    again.open(tmp_path / "p.py")
    assert again.save(tmp_path / "q.py").read_text() == code
    assert [d.kind for d in again.steps] == ["chain", "function with options", "per-component"]


def test_step_list_edits(model):
    model.new_empty()
    model.add_step("denoise")
    model.add_step("denoise")
    assert [d.display_name for d in model.steps] == ["denoise", "denoise 2"]
    model.rename_step(1, "smooth")
    with pytest.raises(ValueError, match="already called 'denoise'"):
        model.rename_step(1, "denoise")
    with pytest.raises(ValueError, match="needs a name"):
        model.rename_step(0, "  ")
    assert model.duplicate_step(1) == 2
    assert [d.display_name for d in model.steps] == ["denoise", "smooth", "smooth copy"]
    model.set_param(2, "sigma", "3")
    assert model.steps[1].branch().calls[0].kwargs == {}  # the copy is independent
    assert model.move_step(2, -2) == 0
    assert [d.display_name for d in model.steps] == ["smooth copy", "denoise", "smooth"]
    model.remove_step(1)
    assert [d.display_name for d in model.steps] == ["smooth copy", "smooth"]
    with pytest.raises(IndexError, match="no step 5"):
        model.remove_step(4)
    assert model.dirty


def test_parameter_forms_from_metadata_refuse_bad_values_at_once(model):
    model.new_empty()
    model.add_step("stitch_sites")
    kinds = {f.name: (f.kind, shown, set_) for f, shown, set_ in model.fields(0)}
    assert kinds["grid"] == ("tuple", (2, 2), False)
    assert kinds["refine"] == ("bool", True, False)
    assert kinds["max_shift"][0] == "int" and model.call(0).entry.field("max_shift").optional
    assert kinds["overlap"][0] == "float"
    assert model.set_param(0, "grid", "3, 4") == (3, 4)
    assert model.set_param(0, "refine", False) is False
    assert model.set_param(0, "max_shift", "") is None
    for name, text, why in [("grid", "3", "expected 2 values"), ("overlap", "lots", "not a number"),
                            ("refine", "maybe", "not true or false"), ("grid", "1.5, 2", "not a whole number")]:
        before = dict(model.call(0).kwargs)
        with pytest.raises(ParamError, match=why):
            model.set_param(0, name, text)
        assert model.call(0).kwargs == before
    model.set_param(0, "overlap", "0.1")  # the default: not written
    assert "overlap" not in model.call(0).kwargs
    assert model.call(0).entry.field("grid").hint == "tuple[int, int], default 2, 2"


def test_choices_from_literal_annotations_and_served_choices():
    from openhcs.frontend.designer_params import field_for

    choice = field_for("method", "Literal['max', 'mean']", "max")
    assert choice.kind == "choice" and choice.choices == ("max", "mean")
    assert choice.parse("mean") == "mean"
    with pytest.raises(ParamError, match="not one of max, mean"):
        choice.parse("median")
    served = field_for("method", "str", "gaussian", choices=("gaussian", "median"))
    assert served.kind == "choice"


def test_catalog_search_by_name_and_category_shows_docs(model):
    found = model.search("nuclei")
    assert {e.name for e in found} >= {"measure_nuclei", "segment_nuclei"}
    assert [e.name for e in model.search("", "projection")] == ["project_z"]
    assert model.search("background", "filters")[0].summary
    assert "filters" in model.catalog.categories()


def test_catalog_source_is_one_callable():
    from openhcs.processing.registry import get_info

    model = DesignerModel(catalog=Catalog(lambda: [get_info("denoise")]))
    assert [e.name for e in model.search()] == ["denoise"]
    with pytest.raises(KeyError, match="no function 'project_z'"):
        model.add_step("project_z")


def test_components_come_from_the_plate(model):
    model.new_empty()
    model.add_step("denoise")
    assert model.available_components() == ["site", "channel", "z", "timepoint"]
    assert model.component_values("channel") == ["1", "2"]
    model.set_components(0, ("channel",), "site")
    with pytest.raises(ValueError, match="both a variable component and the group-by"):
        model.set_components(0, ("site",), "site")
    with pytest.raises(ValueError, match="at least one variable component"):
        model.set_components(0, (), "channel")
    assert model.steps[0].variable_components == ("channel",)


def test_validation_shows_every_error_at_its_step_and_field(model, tmp_path):
    model.new_empty()
    model.add_step("denoise")
    model.add_step()                                    # no function yet
    model.add_step("subtract_background")
    model.call(2).kwargs["radius_px"] = 3               # a keyword the function does not take
    model.add_step("normalize_percentile")
    model.make_per_component(3)
    model.steps[3].branches["9"] = model.steps[3].branches.pop("2")  # a channel the plate lacks
    issues = model.validate()
    where = {(i.step, i.field, i.param) for i in issues}
    assert where == {(1, "function", None), (2, PARAMS, "radius_px"), (3, KEYS, None)}
    assert "choose a function" in model.issues_for(1)[0].message
    assert "channel '9' not in plate" in model.issues_for(3)[0].message
    with pytest.raises(ValueError, match="choose a function"):
        model.save(tmp_path / "bad.py")
    assert not (tmp_path / "bad.py").exists()
    model.set_function(1, "denoise")                    # fix them one by one
    assert model.issues == []                           # an edit clears stale issues
    model.reset_param(2, "radius_px")
    model.make_single(3)
    model.steps[1].name = "denoise"                     # now two steps share a name
    assert {(i.step, i.field) for i in model.validate()} == {(0, NAME), (1, NAME)}
    model.rename_step(1, "denoise again")
    assert model.validate() == []


def test_validation_without_plate_or_with_bad_components():
    model = DesignerModel()
    model.add_step("denoise")
    assert [(i.step, i.field) for i in model.validate()] == [(None, PLATE)]
    model.steps[0].group_by = "site"  # the draft allows it; FunctionStep refuses it
    assert (0, COMPONENTS) in {(i.step, i.field) for i in model.validate()}


def test_preview_runs_steps_up_to_one_on_one_site(model):
    model.new_default()
    result = model.preview(1, well="B02", site="3")
    assert (result.step, result.well, result.site) == ("background", "B02", "3")
    assert sorted(k[1] for k in result.images) == ["1", "2"]
    assert all(k[0] == "3" for k in result.images)
    with pytest.raises(ValueError, match="needs 4 sites"):
        model.preview(2)  # stitching needs the whole well: the reason is shown, not hidden


def test_open_keeps_functions_not_in_the_catalog(model, tmp_path):
    path = tmp_path / "custom.py"
    path.write_text(
        "from openhcs.core.steps import FunctionStep\nfrom scipy.ndimage import gaussian_filter\n\n"
        'pipeline_steps = [FunctionStep(func=[(gaussian_filter, {"sigma": 1.0})], name="blur")]\n')
    model.open(path)
    assert model.steps[0].kind == "chain"
    assert model.call(0).entry.category == "(not in catalog)"
    code = model.code()
    assert 'FunctionStep(func=[(gaussian_filter, {"sigma": 1.0})], name="blur")' in code
    assert isinstance(model.function_steps()[0], FunctionStep)


def test_use_in_sets_the_plate_managers_pipeline(model, tmp_path):
    from openhcs.frontend.controller import PlateManagerController
    from openhcs.frontend.dispatch import ManualDispatcher

    controller = PlateManagerController(ManualDispatcher(), use_zmq=True)
    model.new_default()
    with pytest.raises(ValueError, match="choose a file"):
        model.use_in(controller)
    model.rename_step(3, "count nuclei")
    model.save(tmp_path / "mine.py")
    model.use_in(controller)
    assert controller.pipeline.path == tmp_path / "mine.py"
    assert controller.step_names() == ["flatfield", "background", "stitch", "count nuclei"]
