"""Tables, image grids and plots."""

from gendistill.report.grid import class_grid, save_png, to_uint8
from gendistill.report.table import render_table

__all__ = ["class_grid", "render_table", "save_png", "to_uint8"]
