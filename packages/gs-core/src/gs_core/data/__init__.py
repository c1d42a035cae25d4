"""Multi-view datasets in the NeRF/Blender ``transforms.json`` format: reader, writer, splits and
the torch Dataset the methods train on (see :mod:`gs_core.data.transforms` for the format)."""

from gs_core.data.backgrounds import sample_background
from gs_core.data.dataset import MultiViewConfig, MultiViewDataset, batch_cameras
from gs_core.data.layout import (
    available_splits,
    categories,
    list_objects,
    read_dataset_meta,
    read_split,
    split_ids,
    write_categories,
    write_dataset_meta,
    write_splits,
)
from gs_core.data.spaces import azimuth_elevation, space_transform
from gs_core.data.transforms import Frame, ObjectRecord, read_transforms, transforms_dict
from gs_core.data.views import ObjectViews, load_object_views
from gs_core.data.writer import write_object

__all__ = [
    "Frame",
    "MultiViewConfig",
    "MultiViewDataset",
    "ObjectRecord",
    "ObjectViews",
    "available_splits",
    "azimuth_elevation",
    "batch_cameras",
    "categories",
    "list_objects",
    "load_object_views",
    "read_dataset_meta",
    "read_split",
    "read_transforms",
    "sample_background",
    "space_transform",
    "split_ids",
    "transforms_dict",
    "write_categories",
    "write_dataset_meta",
    "write_object",
    "write_splits",
]
