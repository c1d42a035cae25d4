"""Procedural teachers: small configurations of the real prior classes (Zero123, Zero123++,
ImageDream) trained on the procedural world, and the checks that say whether they are useful.

Training needs a GPU for useful results (``packages/gs-priors/scripts/train_procedural_teachers.py``);
the ``tiny-*`` presets run the same code on a CPU in seconds.
"""

from gs_priors.teachers.architecture import build_vae, load_teacher, write_teacher
from gs_priors.teachers.camera_use import camera_gap
from gs_priors.teachers.config import LAYOUTS, PAPER_GUIDANCE, TeacherConfig
from gs_priors.teachers.data import ViewBank
from gs_priors.teachers.evaluation import evaluate_teacher, usefulness
from gs_priors.teachers.sheet import sample_sheet
from gs_priors.teachers.training import TeacherTrainer
from gs_priors.teachers.vae import train_vae

__all__ = [
    "LAYOUTS",
    "PAPER_GUIDANCE",
    "TeacherConfig",
    "TeacherTrainer",
    "ViewBank",
    "build_vae",
    "camera_gap",
    "evaluate_teacher",
    "load_teacher",
    "sample_sheet",
    "train_vae",
    "usefulness",
    "write_teacher",
]
