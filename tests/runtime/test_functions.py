"""A real server answers ``functions`` with its catalog; the client and the CLI show it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import msgspec
import pytest

from openhcs.runtime import protocol as p

MIN_CATALOG = 150


def test_functions_messages_round_trip_signed():
    session = p.Session(b"k" * 32)
    request = p.Functions(search="otsu", category="skimage.filters")
    assert session.deserialize(session.serialize(request), expect=p.REQUEST_TYPES) == request
    entry = p.FunctionEntry(
        name="filters_gaussian", category="skimage.filters", module="m", qualname="filters_gaussian",
        contract="image -> image", inputs=["image"], output="image",
        params=[p.ParamEntry(name="mode", kind="choice", default="nearest", choices=["reflect", "nearest"])],
    )
    reply = p.reply_to(request, p.FunctionsReply, status="ok", functions=[entry], total=1)
    decoded = session.deserialize(session.serialize(reply))
    assert decoded.functions[0].params[0].choices == ["reflect", "nearest"]
    assert decoded.reply_to == request.msg_id
    bad = msgspec.json.encode({"type": "functions", "msg_id": "x", "search": 3})
    with pytest.raises(p.ProtocolError) as err:
        session.deserialize([p.HEADER, session.sign(bad), bad])
    assert err.value.code == p.INVALID_MESSAGE


def test_a_server_process_serves_its_catalog_with_parameter_metadata(server, client):
    everything = client.list_functions()
    assert len(everything) >= MIN_CATALOG
    by_name = {e["name"]: e for e in everything}
    # built-ins, scikit-image, cp-measure, each with a contract and a summary
    assert by_name["segment_nuclei"]["contract"] == "image -> labels"
    assert by_name["measure_objects"]["contract"] == "labels + image -> table"
    assert by_name["measure_objects"]["inputs"] == ["labels", "image"]
    assert all(e["summary"] and e["contract"] for e in everything)
    gaussian = by_name["filters_gaussian"]
    assert gaussian["category"] == "skimage.filters"
    params = {q["name"]: q for q in gaussian["params"]}
    assert params["sigma"]["kind"] == "float" and params["sigma"]["default"] == 1
    assert params["mode"]["kind"] == "choice" and "reflect" in params["mode"]["choices"]
    assert params["mode"]["default"] == "nearest" and params["mode"]["doc"]
    assert "channel_axis" not in params and "out" not in params
    # the search runs on the server
    found = client.list_functions(search="threshold OTSU")
    assert {e["name"] for e in found} >= {"filters_threshold_otsu"}
    assert all("otsu" in (e["name"] + e["summary"]).lower() for e in found)
    assert len(found) < len(everything)
    labels_in = client.list_functions(search="labels + image")
    assert labels_in and all("labels + image" in e["contract"] for e in labels_in)
    assert client.list_functions(search="no such function anywhere") == []
    # the server still answers everything else
    assert client.get_status()["status"] == "ok"


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "openhcs", "functions", *args], capture_output=True,
                          text=True, timeout=180, env=env or os.environ.copy())


def test_cli_lists_and_searches_a_server_catalog(server):
    port = str(server.info.data_port)
    out = _cli("--server", port, "--search", "rank median")
    assert out.returncode == 0, out.stderr
    assert "filters_rank_median" in out.stdout and "skimage.filters.rank" in out.stdout
    assert "image -> image" in out.stdout and "segment_nuclei" not in out.stdout
    out = _cli("--server", f"127.0.0.1:{port}", "--json", "--search", "cp_measure_intensity")
    entries = json.loads(out.stdout)
    assert [e["name"] for e in entries] == ["cp_measure_intensity"]
    assert {q["name"] for q in entries[0]["params"]} == {"labels_index", "intensity_scale"}


def test_cli_lists_the_local_catalog_and_reports_a_missing_server(runtime_env):
    out = _cli("--search", "watershed")
    assert out.returncode == 0, out.stderr
    assert "segmentation_watershed" in out.stdout and "image -> labels" in out.stdout
    from openhcs.runtime.zmq_base import find_free_port

    out = _cli("--server", str(find_free_port()))
    assert out.returncode != 0 and "no execution server" in out.stderr
    out = _cli("--search", "zzz-nothing")
    assert out.returncode == 1 and "no functions match" in out.stderr
