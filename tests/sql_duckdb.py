"""Answers SQL statements with DuckDB over JSON-lines tables, for tests/sql_functions.rs.

Reads a spec (JSON) on stdin: {"tables": [{"name", "path", "columns": {name: type}}],
"statements": [sql, ...]}. Each table's rows carry `time_us` (microseconds since the
epoch), read as the TIMESTAMP column `time`. Prints one JSON list: per statement
{"rows": [[...]]} or {"error": "..."}. Timestamps print as {"$time": nanoseconds}.
"""

import datetime
import decimal
import json
import sys

import duckdb


def plain(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        delta = value - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
        return {"$time": micros * 1000}
    if isinstance(value, datetime.date):
        return {"$time": (value - datetime.date(1970, 1, 1)).days * 86400 * 10**9}
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float) and value != value:
        return None
    return value


def main():
    spec = json.load(sys.stdin)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for table in spec["tables"]:
        columns = dict(table["columns"])
        columns["time_us"] = "BIGINT"
        struct = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
        con.execute(
            f"CREATE TABLE {table['name']} AS SELECT make_timestamp(time_us) AS time, "
            f"* EXCLUDE (time_us) FROM read_json(?, format = 'newline_delimited', "
            f"columns = {struct})",
            [table["path"]],
        )
    answers = []
    for statement in spec["statements"]:
        try:
            rows = con.execute(statement).fetchall()
            answers.append({"rows": [[plain(v) for v in row] for row in rows]})
        except Exception as error:  # noqa: BLE001 - the test shows the error
            answers.append({"error": str(error)})
    json.dump(answers, sys.stdout)


main()
