"""Elasticsearch bulk ingest for tests/es_bulk.rs, on the official Python client
(`elasticsearch` 7.13.4, the last release that talks to servers other than
Elastic's own).

Usage: es_bulk_client.py URL KEY INDEX COUNT START_EPOCH_MS

Connects to URL (ending in `/es`) with the key as the Basic auth password,
reads the server's version (with the key sent as `ApiKey`), then sends with the
bulk helper (gzip-compressed) COUNT documents `{"@timestamp": START+n ms,
"message": "bulk document n", "n": n, "host": {"name": "web-<n % 3>"}}` to INDEX,
and two that must fail: one whose `@timestamp` is not a time (400) and one for an
index that names no pool (404). Prints one JSON line:
  {"version": "...", "stored": S, "failed": [{"status": ..., "type": ..., "index": ...}, ...]}
"""

import json
import sys

from elasticsearch import Elasticsearch, helpers


def main():
    url, key, index, count, start_ms = sys.argv[1:6]
    count, start_ms = int(count), int(start_ms)
    version = Elasticsearch([url], api_key=key).info()["version"]["number"]
    client = Elasticsearch([url], http_auth=("shipper", key), http_compress=True)

    def actions():
        for n in range(count):
            yield {
                "_index": index,
                "_id": "doc-%d" % n,
                "_source": {
                    "@timestamp": start_ms + n,
                    "message": "bulk document %d" % n,
                    "n": n,
                    "host": {"name": "web-%d" % (n % 3)},
                },
            }
            if n == count // 2:
                yield {"_index": index, "_source": {"@timestamp": "not a time", "n": -1}}
                yield {"_op_type": "create", "_index": index.split(".")[0] + ".no-such-pool",
                       "_source": {"message": "nowhere"}}

    stored, errors = helpers.bulk(
        client, actions(), chunk_size=100, raise_on_error=False, stats_only=False
    )
    failed = []
    for error in errors:
        ((_, item),) = error.items()
        failed.append({
            "status": item["status"],
            "type": item["error"]["type"],
            "index": item["_index"],
        })
    print(json.dumps({"version": version, "stored": stored, "failed": failed}))


if __name__ == "__main__":
    main()
