"""`python -m materializer check FILE`: the topology printed, or the refused statement's place."""

from __future__ import annotations

from pathlib import Path

import pytest

from materializer.__main__ import main

HERE = Path(__file__).parent


def test_check_prints_sources_tables_joins_outputs_and_topics(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(HERE / "seed.sql")]) == 0
    out = capsys.readouterr().out
    for words in (
        "STREAM ORDERS_STREAM (orders_stream): source, reads topic 'orders'",
        "TABLE CUSTOMERS_TABLE (customers_table): LATEST_BY_OFFSET",
        "TABLE CUSTOMER_CREATED (customer_created): view of CUSTOMERS_TABLE WHERE action = 'created'",
        "INNER JOIN ORGANIZATIONS_TABLE ON ORDERS_STREAM.ORGANIZATION_ID = ORGANIZATIONS_TABLE.ID",
        "writes topic 'orders_created'",
        "note: statement 7 (DROP STREAM orders_created)",
    ):
        assert words in out


def test_check_of_the_notifications_streams_file() -> None:
    assert main(["check", str(HERE.parent.parent / "notifications" / "streams.sql")]) == 0


def test_check_refuses_with_statement_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.sql"
    bad.write_text(
        "-- one\nCREATE STREAM s (a INTEGER) WITH (kafka_topic='t', value_format='json');\nSHOW TABLES;\n"
    )
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "line 3, column 1: statement 2 (SHOW TABLES)" in err and "supported: CREATE STREAM" in err


def test_check_of_a_missing_or_binary_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(tmp_path / "nope.sql")]) == 1
    (tmp_path / "bin.sql").write_bytes(b"\xff\xfe\x00")
    assert main(["check", str(tmp_path / "bin.sql")]) == 1
    assert capsys.readouterr().err.count("cannot read") == 2


def test_help_names_the_subset(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["check", "--help"])
    assert exit_.value.code == 0
    assert "LATEST_BY_OFFSET" in capsys.readouterr().out
