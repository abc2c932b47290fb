#!/usr/bin/env python3
"""The ClickHouse peer of `logpool bench queries --clickhouse`.

Loads the benchmark's records (the NDJSON file the bench writes, one record per line:
`time` in microseconds, `seq`, `level`, `host`, `component`, `message`) into an
embedded ClickHouse (PyPI `chdb`), into the table a ClickHouse user would write for
logs (see TABLE), then answers the bench's queries one at a time: one JSON request per
line on stdin, one JSON answer per line on stdout, so that the bench alternates the
engines run by run and the load of a shared machine falls on all of them.

The table is built once per database directory and reused, like logpool's index; its
load time (insert, then OPTIMIZE FINAL so that the parts are settled as a finished
logpool build's segments are) is kept in a manifest next to it.

Requests (`from_ms`/`to_ms` bound every query, `to` excluded):
  {"kind": "text", "words": [...], "page": 100}       bare term (1 word) or phrase
  {"kind": "range", "word": [field, value] | null, "field": f, "range": [lo, hi], "page": 100}
  {"kind": "histogram", "interval_ns": n}
  {"kind": "top", "field": f, "top": 10}
Answers: {"ms": elapsed, "answer": {"total", "hits"} | {"interval_ms", "counts"} |
{"groups": [[value, count], ...]}} or {"error": text}.
"""

import argparse
import json
import os
import re
import sys
import time

from chdb import session

# What a ClickHouse user writes for logs: a MergeTree sorted by the emitting program
# and time (the service-then-time key of ClickHouse's own log examples; `component`
# is the program, low-cardinality), low-cardinality strings for the parsed fields,
# ZSTD on every column (delta-coded time and sequence first), and a token bloom filter
# on the lower-cased line, so that `hasToken(lower(message), ...)` skips granules.
TABLE = """
CREATE TABLE IF NOT EXISTS logs (
    ts DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    seq UInt64 CODEC(Delta, ZSTD(1)),
    level LowCardinality(String) CODEC(ZSTD(1)),
    host LowCardinality(String) CODEC(ZSTD(1)),
    component LowCardinality(String) CODEC(ZSTD(1)),
    message String CODEC(ZSTD(3)),
    INDEX message_tokens lower(message) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 1
) ENGINE = MergeTree
ORDER BY (component, ts)
"""

MANIFEST = "peer-manifest.json"
FIELDS = {"level", "host", "component", "seq", "message"}
WORD = re.compile(r"^[a-z0-9]+$")


def ch_string(text):
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def rows(sess, sql):
    result = sess.query(sql, "JSONCompact")
    return json.loads(result.bytes())["data"]


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def load(sess, db, records_file):
    manifest_path = os.path.join(db, MANIFEST)
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            return json.load(f)
    started = time.perf_counter()
    sess.query(TABLE)
    sess.query(
        "INSERT INTO logs SELECT fromUnixTimestamp64Micro(time, 'UTC'), seq, level, host,"
        " component, message FROM file({}, 'JSONEachRow',"
        " 'time Int64, seq UInt64, level String, host String, component String,"
        " message String')".format(ch_string(os.path.abspath(records_file)))
    )
    sess.query("OPTIMIZE TABLE logs FINAL")
    manifest = {
        "load_secs": time.perf_counter() - started,
        "rows": int(rows(sess, "SELECT count() FROM logs")[0][0]),
    }
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)
    return manifest


def time_filter(request):
    return "ts >= fromUnixTimestamp64Milli({}, 'UTC') AND ts < fromUnixTimestamp64Milli({}, 'UTC')".format(
        int(request["from_ms"]), int(request["to_ms"])
    )


def text_condition(words):
    """A term is a token of the line; a phrase is a run of tokens of the line.

    What a ClickHouse user writes for a word search in logs: the line only, so that
    the token bloom filter can skip granules (logpool's bare term also searches the
    other fields; the bench's terms are words of lines only, and the bench compares
    the counts). A phrase is its words as tokens (the bloom filter) and, on the
    granules left, the words in a row with only separators between them."""
    words = [w.lower() for w in words]
    for word in words:
        if not WORD.match(word):
            raise ValueError("words are letters and digits only: {!r}".format(word))
    if len(words) == 1:
        return "hasToken(lower(message), {})".format(ch_string(words[0]))
    tokens = " AND ".join("hasToken(lower(message), {})".format(ch_string(w)) for w in words)
    run = "(^|[^a-z0-9])" + "[^a-z0-9]+".join(words) + "([^a-z0-9]|$)"
    return "{} AND match(lower(message), {})".format(tokens, ch_string(run))


def page(sess, condition, request):
    where = "({}) AND {}".format(condition, time_filter(request))
    total = int(rows(sess, "SELECT count() FROM logs WHERE " + where)[0][0])
    hits = rows(
        sess,
        "SELECT ts, seq, level, host, component, message FROM logs WHERE {}"
        " ORDER BY ts DESC LIMIT {}".format(where, int(request["page"])),
    )
    return {"total": total, "hits": len(hits)}


def field(name):
    if name not in FIELDS:
        raise ValueError("unknown field {!r}".format(name))
    return name


def answer(sess, request):
    kind = request["kind"]
    if kind == "text":
        return page(sess, text_condition(request["words"]), request)
    if kind == "range":
        low, high = (int(v) for v in request["range"])
        condition = "{} BETWEEN {} AND {}".format(field(request["field"]), low, high)
        if request.get("word"):
            name, value = request["word"]
            condition += " AND {} = {}".format(field(name), ch_string(value))
        return page(sess, condition, request)
    if kind == "histogram":
        interval_us = int(request["interval_ns"]) // 1000
        counts = rows(
            sess,
            "SELECT intDiv(toUnixTimestamp64Micro(ts), {0}) AS bucket, count() FROM logs"
            " WHERE {1} GROUP BY bucket ORDER BY bucket".format(interval_us, time_filter(request)),
        )
        return {
            "interval_ms": int(request["interval_ns"]) // 1_000_000,
            "counts": [int(c) for _, c in counts if int(c) > 0],
        }
    if kind == "top":
        name = field(request["field"])
        groups = rows(
            sess,
            "SELECT {0}, count() AS c FROM logs WHERE {1} GROUP BY {0} ORDER BY c DESC LIMIT {2}".format(
                name, time_filter(request), int(request["top"])
            ),
        )
        return {"groups": [[str(k), int(c)] for k, c in groups]}
    raise ValueError("unknown request kind {!r}".format(kind))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="database directory (built once, reused)")
    parser.add_argument("--records", required=True, help="NDJSON records to load when building")
    args = parser.parse_args()
    os.makedirs(args.db, exist_ok=True)
    sess = session.Session(args.db)
    manifest = load(sess, args.db, args.records)
    parts = rows(
        sess,
        "SELECT sum(bytes_on_disk), sum(data_uncompressed_bytes), count() FROM system.parts"
        " WHERE active AND table = 'logs'",
    )[0]
    ready = dict(manifest)
    ready.update(
        {
            "ready": True,
            "table_bytes": int(parts[0]),
            "uncompressed_bytes": int(parts[1]),
            "parts": int(parts[2]),
            "dir_bytes": dir_bytes(args.db),
            "version": rows(sess, "SELECT version()")[0][0],
        }
    )
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            started = time.perf_counter()
            result = answer(sess, request)
            elapsed = (time.perf_counter() - started) * 1000.0
            print(json.dumps({"ms": elapsed, "answer": result}), flush=True)
        except Exception as error:  # the bench reports it and stops
            print(json.dumps({"error": str(error)}), flush=True)
    sess.close()


if __name__ == "__main__":
    main()
