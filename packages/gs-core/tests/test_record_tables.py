"""The shared command line of the record-joining scripts."""

from __future__ import annotations

import json

import pytest

from gs_core.evaluation.record_tables import RecordError, record_table_main


def _join(paths):
    values = []
    for p in paths:
        data = json.loads(p.read_text())
        if "value" not in data:
            raise RecordError(f"{p}: expected a 'value'")
        values.append(data["value"])
    return {"total": sum(values)}


def _main(argv):
    return record_table_main(
        argv,
        description="test",
        records_help="records",
        join=_join,
        markdown=lambda j: f"total {j['total']}",
    )


def test_records_join_print_and_write_atomically(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text('{"value": 2}')
    b.write_text('{"value": 3}')
    out = tmp_path / "t.json"
    assert _main([str(a), str(b), "--out", str(out)]) == {"total": 5}
    assert capsys.readouterr().out.strip() == "total 5"
    assert json.loads(out.read_text()) == {"total": 5}
    assert not list(tmp_path.glob("*.tmp*"))
    with pytest.raises(SystemExit) as exc:  # never over an existing file unasked
        _main([str(a), "--out", str(out)])
    assert exc.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert _main([str(a), "--out", str(out), "--overwrite"]) == {"total": 2}
    assert json.loads(out.read_text()) == {"total": 2}


def test_a_record_that_cannot_join_is_one_error_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(SystemExit) as exc:
        _main([str(bad)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "bad.json" in err
