"""Real shipper clients for tests/shipper_protocols.rs: the OpenTelemetry Python SDK's
OTLP/HTTP log exporter, OTLP protobuf built with `opentelemetry-proto` and posted by
hand, and `python-logging-loki`. Each command prints one JSON line with what it saw.

Usage:
  shipper_clients.py otlp-sdk  <url> <key> <n> headers|resource <project> <pool>
  shipper_clients.py otlp-raw  <url> <key> <project> <pool>
  shipper_clients.py loki      <url> <key> <n> <version> <project> <pool>
"""

import json
import logging
import sys
import time


def otlp_sdk(url, key, n, mode, project, pool):
    from opentelemetry import trace
    from opentelemetry._logs import LogRecord, SeverityNumber
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    headers = {"Authorization": f"Bearer {key}"}
    attributes = {"service.name": "checkout", "deployment.environment": "test"}
    if mode == "headers":
        headers.update({"X-Logpool-Project": project, "X-Logpool-Pool": pool})
    else:
        attributes.update({"logpool.project": project, "logpool.pool": pool})

    results = []

    class Recording(OTLPLogExporter):
        def export(self, batch):
            result = super().export(batch)
            results.append(result.name)
            return result

    exporter = Recording(
        endpoint=f"{url}/v1/logs", headers=headers, compression=Compression.Gzip
    )
    provider = LoggerProvider(resource=Resource.create(attributes))
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    tracer = TracerProvider().get_tracer("shipper-test")
    handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    log = logging.getLogger("shop.orders")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    with tracer.start_as_current_span("place-order") as span:
        context = span.get_span_context()
        for i in range(n - 1):
            level = logging.WARNING if i % 2 else logging.INFO
            log.log(level, "order %d placed", i, extra={"order.id": i, "shop.region": "eu"})
    # One record with a structured body, through the Logs API itself.
    otel_logger = provider.get_logger("shop.audit", "1.2.3")
    otel_logger.emit(
        LogRecord(
            timestamp=time.time_ns(),
            observed_timestamp=time.time_ns(),
            severity_number=SeverityNumber.ERROR,
            body={"op": "refund", "amount": 12.5},
            attributes={"audit": True},
            event_name="order.refund",
        )
    )
    provider.force_flush()
    provider.shutdown()
    print(
        json.dumps(
            {
                "results": results,
                "trace_id": format(context.trace_id, "032x"),
                "span_id": format(context.span_id, "016x"),
            }
        )
    )


def otlp_raw(url, key, project, pool):
    import requests
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
        ExportLogsServiceResponse,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource

    def text(key, value):
        return KeyValue(key=key, value=AnyValue(string_value=value))

    now = time.time_ns()
    records = [
        LogRecord(time_unix_nano=now, body=AnyValue(string_value="first"), span_id=b"\x01" * 8),
        # A span id of 3 bytes: OTLP says 8 (or none); this record alone is rejected.
        LogRecord(time_unix_nano=now, body=AnyValue(string_value="broken"), span_id=b"\x01\x02\x03"),
        LogRecord(time_unix_nano=now, body=AnyValue(string_value="third")),
    ]
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=[text("logpool.project", project), text("logpool.pool", pool)]),
                scope_logs=[ScopeLogs(log_records=records)],
            )
        ]
    )
    response = requests.post(
        f"{url}/v1/logs",
        data=request.SerializeToString(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"},
        timeout=30,
    )
    answer = ExportLogsServiceResponse()
    answer.ParseFromString(response.content)
    print(
        json.dumps(
            {
                "status": response.status_code,
                "content_type": response.headers.get("content-type"),
                "rejected": answer.partial_success.rejected_log_records,
                "message": answer.partial_success.error_message,
            }
        )
    )


def loki(url, key, n, version, project, pool):
    import requests
    import logging_loki

    class Bearer(requests.auth.AuthBase):
        def __call__(self, request):
            request.headers["Authorization"] = f"Bearer {key}"
            return request

    errors = []

    class Recording(logging_loki.LokiHandler):
        def handleError(self, record):
            errors.append(str(sys.exc_info()[1]))

    handler = Recording(
        url=f"{url}/loki/api/v1/push",
        tags={"app": "billing", "logpool_project": project, "logpool_pool": pool},
        auth=Bearer(),
        version=version,
    )
    log = logging.getLogger(f"billing.v{version}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    for i in range(n):
        log.log(logging.ERROR if i % 3 == 0 else logging.INFO, "invoice %d sent", i)
    print(json.dumps({"errors": errors}))


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "otlp-sdk":
        url, key, n, mode, project, pool = args
        otlp_sdk(url, key, int(n), mode, project, pool)
    elif command == "otlp-raw":
        otlp_raw(*args)
    elif command == "loki":
        url, key, n, version, project, pool = args
        loki(url, key, int(n), version, project, pool)
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
