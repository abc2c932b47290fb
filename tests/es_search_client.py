"""Elasticsearch-compatible search for tests/es_search.rs, on the official Python
client (`elasticsearch` 7.13.4, as tests/es_bulk_client.py).

Usage: es_search_client.py URL KEY INDEX QUERY

Connects to URL (ending in `/es`) with the key as the Basic auth password, lists
the index's fields (`indices.get_mapping`), then searches INDEX with a
query_string QUERY for the 5 newest hits and a terms aggregation on
`host.keyword`, and pages once with `search_after`. Prints one JSON line:
  {"fields": [...], "total": T, "hits": [ids], "next": [ids], "hosts": {key: doc_count}}
"""

import json
import sys

from elasticsearch import Elasticsearch


def main():
    url, key, index, query = sys.argv[1:5]
    client = Elasticsearch([url], http_auth=("grafana", key))
    mapping = client.indices.get_mapping(index=index)
    fields = sorted(mapping[index]["mappings"]["properties"])
    body = {
        "query": {"query_string": {"query": query}},
        "size": 5,
        "sort": [{"@timestamp": "desc"}],
        "aggs": {"hosts": {"terms": {"field": "host.keyword", "size": 20}}},
    }
    first = client.search(index=index, body=body)
    body["search_after"] = first["hits"]["hits"][-1]["sort"]
    del body["aggs"]
    second = client.search(index=index, body=body)
    print(json.dumps({
        "fields": fields,
        "total": first["hits"]["total"]["value"],
        "hits": [hit["_id"] for hit in first["hits"]["hits"]],
        "next": [hit["_id"] for hit in second["hits"]["hits"]],
        "hosts": {b["key"]: b["doc_count"] for b in first["aggregations"]["hosts"]["buckets"]},
    }))


if __name__ == "__main__":
    main()
