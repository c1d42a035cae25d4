"""``--budget-s`` of scripts that chain training stages: one number or seconds per stage."""

from __future__ import annotations

import argparse

import pytest

from gs_core.training.stage_budgets import parse_stage_budgets, stage_budget_arg

STAGES = ("first", "second")


def test_one_number_caps_every_stage():
    assert parse_stage_budgets("90", STAGES) == {"first": 90.0, "second": 90.0}
    assert parse_stage_budgets("2.5", STAGES) == {"first": 2.5, "second": 2.5}


def test_json_caps_the_stages_it_names():
    assert parse_stage_budgets('{"second": 30}', STAGES) == {"second": 30.0}
    assert parse_stage_budgets("{}", STAGES) == {}


@pytest.mark.parametrize(
    "bad", ["0", "-5", "true", "soon", '{"third": 5}', '{"first": 0}', '{"first": true}', "[1]"]
)
def test_anything_else_is_refused_naming_the_stages(bad):
    with pytest.raises(ValueError, match="keyed by first, second; got"):
        parse_stage_budgets(bad, STAGES)
    with pytest.raises(argparse.ArgumentTypeError, match="keyed by first, second"):
        stage_budget_arg(STAGES)(bad)


def test_argparse_reports_the_message():
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget-s", type=stage_budget_arg(STAGES), default={})
    assert ap.parse_args(["--budget-s", '{"first": 4}']).budget_s == {"first": 4.0}
    with pytest.raises(SystemExit):
        ap.parse_args(["--budget-s", "never"])
