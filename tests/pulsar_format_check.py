#!/usr/bin/env python3
"""Checks logpool's queue message format with the official Pulsar client.

Reads the first COUNT messages of TOPIC (from the earliest message) with
`pulsar-client` (the Apache Pulsar C++ client), checks each message against the
public contract in docs/queue-message-format.md, and prints each decoded batch (the
JSON array of records) as one line of JSON on stdout. Any violation exits non-zero
with the reason on stderr.

Contract checked:
- properties `pool_id`, `record_count`, `format_version` are decimal strings;
  `format_version` is 1 and `pool_id` is the expected pool;
- payload byte 0 is the format version (1), bytes 1..5 the record count as an
  unsigned 32-bit little-endian integer (equal to `record_count`), and bytes 5.. one
  zstd frame holding a JSON array of records `{"t": <int ns>, "f": {<flat fields>}}`.

Used by the Rust test `test_python_pulsar_client_decodes_produced_batches`
(crates/engines, feature `pulsar`). Needs: pip install pulsar-client zstandard

Usage: pulsar_format_check.py --url pulsar://127.0.0.1:6650 --topic TOPIC --count N
                              [--pool-id ID] [--timeout-ms MS]
"""

import argparse
import json
import sys

import pulsar
import zstandard


def fail(message):
    print(f"pulsar_format_check: {message}", file=sys.stderr)
    sys.exit(1)


def decimal_property(properties, key):
    value = properties.get(key)
    if value is None:
        fail(f"property {key!r} is missing (properties: {properties})")
    if not value.isdigit() and not (value.startswith("-") and value[1:].isdigit()):
        fail(f"property {key!r} is not a decimal integer: {value!r}")
    return int(value)


def check_record(record, where):
    if not isinstance(record, dict) or set(record) != {"t", "f"}:
        fail(f"{where}: a record must be an object with exactly 't' and 'f': {record!r}")
    if not isinstance(record["t"], int) or isinstance(record["t"], bool):
        fail(f"{where}: 't' must be integer nanoseconds: {record['t']!r}")
    fields = record["f"]
    if not isinstance(fields, dict):
        fail(f"{where}: 'f' must be an object: {fields!r}")
    for name, value in fields.items():
        if not isinstance(value, (str, int, float, bool)):
            fail(f"{where}: field {name!r} is not flat (string, number or bool): {value!r}")


def decode_payload(payload, record_count, where):
    if len(payload) < 5:
        fail(f"{where}: payload of {len(payload)} bytes is shorter than its header")
    if payload[0] != 1:
        fail(f"{where}: payload format version byte is {payload[0]}, expected 1")
    header_count = int.from_bytes(payload[1:5], "little", signed=False)
    if header_count != record_count:
        fail(f"{where}: header record count {header_count} != property {record_count}")
    # The frame may not declare its content size (streaming encoder), so decompress
    # through a decompression object rather than the one-shot API.
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    try:
        body = decompressor.decompress(payload[5:])
    except zstandard.ZstdError as error:
        fail(f"{where}: payload body is not a zstd frame: {error}")
    if not decompressor.eof:
        fail(f"{where}: the zstd frame is truncated")
    if decompressor.unused_data:
        fail(f"{where}: {len(decompressor.unused_data)} bytes follow the zstd frame")
    try:
        records = json.loads(body)
    except ValueError as error:
        fail(f"{where}: payload body is not JSON: {error}")
    if not isinstance(records, list):
        fail(f"{where}: payload body is not a JSON array")
    if len(records) != record_count:
        fail(f"{where}: body has {len(records)} records, record_count says {record_count}")
    for index, record in enumerate(records):
        check_record(record, f"{where} record {index}")
    return records


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--pool-id", type=int)
    parser.add_argument("--timeout-ms", type=int, default=10_000)
    args = parser.parse_args()

    client = pulsar.Client(args.url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    try:
        reader = client.create_reader(args.topic, pulsar.MessageId.earliest)
        for number in range(args.count):
            where = f"message {number} of {args.topic}"
            try:
                message = reader.read_next(args.timeout_ms)
            except pulsar.Timeout:
                fail(f"{where}: not received within {args.timeout_ms} ms")
            properties = message.properties()
            pool_id = decimal_property(properties, "pool_id")
            record_count = decimal_property(properties, "record_count")
            format_version = decimal_property(properties, "format_version")
            if format_version != 1:
                fail(f"{where}: format_version is {format_version}, expected 1")
            if args.pool_id is not None and pool_id != args.pool_id:
                fail(f"{where}: pool_id is {pool_id}, expected {args.pool_id}")
            records = decode_payload(message.data(), record_count, where)
            print(json.dumps(records), flush=True)
        reader.close()
    finally:
        client.close()


if __name__ == "__main__":
    main()
