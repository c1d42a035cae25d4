"""File I/O: INRIA 3DGS PLY, .splat, atomic writes."""
