"""The table of a run over many inputs (table.py): same columns as a DataFrame or dicts."""

import pytest

from chatmagic.core.table import STAT_COLUMNS, Row, build_table, columns


def _rows():
    return [Row(0, "a", "pos", "stop", 10, 2, None, 0.5),
            Row(1, "a", None, None, None, None, None, 0.1, error="HTTP 500: boom")]


def test_list_of_dicts_without_pandas():
    table = build_table(_rows(), use_pandas=False)
    assert [list(r) for r in table] == [columns()] * 2
    assert table[0]["text"] == "pos" and table[1]["error"] == "HTTP 500: boom"
    assert list(STAT_COLUMNS) == columns()[3:]


def test_dataframe_same_columns_and_key_name():
    table = build_table(_rows(), key_name="key")
    assert list(table.columns) == ["key", "model", "text", *STAT_COLUMNS]
    assert table["text"].tolist()[0] == "pos" and table["key"].tolist() == [0, 1]


def test_schema_fields_come_before_the_text_of_replies_that_did_not_fit():
    rows = [Row("x", "m", '{"label": "pos"}', fields={"label": "pos"}),
            Row("y", "m", "not json", error="bad")]
    table = build_table(rows, schema_fields=["label", "score"], use_pandas=False)
    assert list(table[0])[:5] == ["index", "model", "label", "score", "text"]
    assert table[0]["label"] == "pos" and table[0]["score"] is None
    assert table[0]["text"] is None and table[1]["label"] is None
    assert table[1]["text"] == "not json"


def test_empty_table_keeps_columns():
    assert list(build_table([]).columns) == columns()
    assert build_table([], use_pandas=False) == []


def test_whole_numbers_stay_whole_when_a_row_lacks_them() -> None:
    pytest.importorskip("pandas")
    rows = [Row(0, "m", fields={"age": 36, "name": "Ada"}, prompt_tokens=7,
                completion_tokens=3, seconds=0.5),
            Row(1, "m", text="not JSON", error="invalid output", seconds=0.25)]
    table = build_table(rows, schema_fields=["name", "age"])
    assert str(table["age"].dtype) == "Int64" and table["age"][0] == 36
    assert str(table["prompt_tokens"].dtype) == "Int64" and table["prompt_tokens"][0] == 7
    assert table["age"].isna()[1] and table["prompt_tokens"].isna()[1]
    assert table["seconds"].tolist() == [0.5, 0.25]  # floats stay floats
    # text as pandas keeps text (its missing marker is pandas' own)
    assert table["text"].isna().tolist() == [True, False] and table["text"][1] == "not JSON"
