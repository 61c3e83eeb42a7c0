"""Helpers that write real plate files with tifffile (imported by tests and conftest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile


def write_tiff(path: Path, shape: tuple[int, ...] = (8, 10), value: int = 0,
               dtype: str = "uint16") -> Path:
    """A real TIFF whose pixels all equal ``value`` (so reads can be told apart)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.full(shape, value, dtype=dtype))
    return path


INDEX_XML = """<?xml version="1.0" encoding="utf-8"?>
<EvaluationInputData xmlns="http://www.perkinelmer.com/PEHH/HarmonyV5" Version="2">
  <Plates><Plate><PlateID>P1</PlateID><MeasurementID>m-42</MeasurementID>
    <PlateTypeName>384 PerkinElmer CellCarrier Ultra</PlateTypeName>
    <PlateRows>16</PlateRows><PlateColumns>24</PlateColumns></Plate></Plates>
  <Maps><Map>
    <Entry ChannelID="1"><ChannelName>HOECHST 33342</ChannelName></Entry>
    <Entry ChannelID="2"><ChannelName>Alexa 488</ChannelName></Entry>
  </Map></Maps>
  <Images>
    <Image Version="1"><id>0101K1F1P1R1</id><URL>r01c01f01p01-ch1sk1fk1fl1.tiff</URL>
      <ChannelID>1</ChannelID><ChannelName>HOECHST 33342</ChannelName></Image>
  </Images>
</EvaluationInputData>
"""


def opera_name(row: int, col: int, field: int, plane: int, channel: int, timepoint: int) -> str:
    return f"r{row:02d}c{col:02d}f{field:02d}p{plane:02d}-ch{channel}sk{timepoint}fk1fl1.tiff"
