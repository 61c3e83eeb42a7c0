"""A synthetic plate with known nuclei counts and the pipeline that counts them."""

from openhcs.demo.pipeline import default_pipeline
from openhcs.demo.plate import DemoPlate, make_demo_plate

__all__ = ["DemoPlate", "default_pipeline", "make_demo_plate"]
