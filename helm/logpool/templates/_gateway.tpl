{{/* Upstream host:port of one service: the value given, else the chart's Service. */}}
{{- define "logpool.gateway.upstream" -}}
{{- .address | default (printf "%s:%d" (include "logpool.componentName" .) (int64 .root.Values.service.port)) -}}
{{- end -}}

{{/*
The largest PutDatas body the gateway passes on: exactly what put-datas itself reads
before refusing (max_body_bytes plus 64 KiB of compression framing). Every body
within it reaches put-datas whole, so put-datas answers it (also with its 413); a
larger one never leaves the gateway, which asks put-datas for its 413 instead.
*/}}
{{- define "logpool.gateway.ingestBodyLimit" -}}
{{- $max := int64 (.Values.config.limits.max_body_bytes | default 10485760) -}}
{{- .Values.gateway.ingestBodyLimit | default (add $max 65536) -}}
{{- end -}}

{{/* Headers every proxied request carries (a location's own proxy_set_header replaces them all). */}}
{{- define "logpool.gateway.proxyHeaders" -}}
proxy_set_header Host $host;
proxy_set_header X-Real-IP $remote_addr;
proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
proxy_set_header X-Forwarded-Proto $scheme;
{{- end -}}

{{/*
nginx.conf of the gateway. The same text serves the Kubernetes gateway and the
local cluster (scripts/cluster.sh renders it with 127.0.0.1 upstreams).
*/}}
{{- define "logpool.gateway.nginxConf" -}}
{{- $gw := .Values.gateway -}}
{{- $scheme := include "logpool.scheme" . -}}
{{- $pool := "^/v1/projects/[^/]+/pools/[^/]+" -}}
# Rendered from the logpool chart (templates/_gateway.tpl).
daemon off;
worker_processes {{ $gw.workerProcesses }};
pid {{ $gw.runDir }}/nginx.pid;
error_log {{ $gw.errorLog }} warn;

events {
    worker_connections {{ int64 $gw.workerConnections }};
}

http {
    # A read-only root filesystem: every file nginx writes is under runDir.
    client_body_temp_path {{ $gw.runDir }}/client_body;
    proxy_temp_path {{ $gw.runDir }}/proxy;
    fastcgi_temp_path {{ $gw.runDir }}/fastcgi;
    uwsgi_temp_path {{ $gw.runDir }}/uwsgi;
    scgi_temp_path {{ $gw.runDir }}/scgi;
    # Which service answered, and how long it took, on every line.
    log_format logpool '$remote_addr - $remote_user [$time_local] "$request" $status '
                       '$body_bytes_sent "$http_user_agent" rt=$request_time '
                       'upstream=$upstream_addr upstream_status=$upstream_status '
                       'upstream_time=$upstream_response_time';
    access_log {{ $gw.accessLog }} logpool;
    server_tokens off;
    default_type application/octet-stream;

    # WebSocket upgrade for the live tail; plain requests keep upstream connections open.
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      '';
    }

    # The length a refused PutDatas body declared; for a chunked one (whose
    # $content_length is what nginx had read when it stopped) just over the limit.
    map $http_transfer_encoding $refused_body_length {
        ''      $content_length;
        default {{ add (include "logpool.gateway.ingestBodyLimit" . | int64) 1 }};
    }

    upstream put_datas {
        server {{ include "logpool.gateway.upstream" (dict "root" . "component" "put-datas" "address" $gw.upstreams.putDatas) }};
        keepalive 32;
    }
    upstream search_api {
        server {{ include "logpool.gateway.upstream" (dict "root" . "component" "search-api" "address" $gw.upstreams.searchApi) }};
        keepalive 32;
    }
    upstream tail_ws {
        server {{ include "logpool.gateway.upstream" (dict "root" . "component" "tail-ws" "address" $gw.upstreams.tailWs) }};
        keepalive 32;
    }
    upstream control_api {
        server {{ include "logpool.gateway.upstream" (dict "root" . "component" "control-api" "address" $gw.upstreams.controlApi) }};
        keepalive 32;
    }

    server {
        listen {{ with $gw.listenAddress }}{{ . }}:{{ end }}{{ int64 $gw.port }}{{ if .Values.tls.enabled }} ssl{{ end }};
        {{- if .Values.tls.enabled }}
        ssl_certificate {{ $gw.tlsDir | default "/etc/nginx/tls" }}/tls.crt;
        ssl_certificate_key {{ $gw.tlsDir | default "/etc/nginx/tls" }}/tls.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        {{- end }}

        client_max_body_size {{ $gw.otherBodyLimit }};
        proxy_http_version 1.1;
        {{- include "logpool.gateway.proxyHeaders" . | nindent 8 }}
        proxy_set_header Connection "";
        # The services' own answers (JSON errors included) reach the client unchanged.
        proxy_intercept_errors off;
        proxy_connect_timeout {{ $gw.connectTimeout }};
        proxy_send_timeout {{ $gw.sendTimeout }};
        proxy_read_timeout {{ $gw.readTimeout }};
        {{- if .Values.tls.enabled }}
        # The services present the same certificate; the hop stays inside the cluster.
        proxy_ssl_server_name on;
        {{- end }}

        # The gateway's own liveness (every other path belongs to the services).
        location = /gateway/healthz {
            access_log off;
            default_type text/plain;
            return 200 "ok\n";
        }

        # Bodies over otherBodyLimit, which no service would take: a JSON answer in
        # the services' error format instead of nginx's HTML page.
        error_page 413 = @body_too_large;
        location @body_too_large {
            default_type application/json;
            return 413 '{"error":{"code":"payload_too_large","message":"the request body is larger than the gateway takes ({{ $gw.otherBodyLimit }})","limit":"gateway.otherBodyLimit"}}';
        }

        # PutDatas. A body over put-datas's limit is not passed on: put-datas is asked
        # with its head alone (the declared length, no body) and refuses it with its
        # own 413 before reading, so the client gets put-datas's JSON answer, and no
        # half-sent body races put-datas's early answer.
        location ~ {{ $pool }}/logs$ {
            client_max_body_size {{ include "logpool.gateway.ingestBodyLimit" . }};
            error_page 413 = @ingest_body_too_large;
            proxy_pass {{ $scheme }}://put_datas;
        }
        location @ingest_body_too_large {
            {{- include "logpool.gateway.proxyHeaders" . | nindent 12 }}
            proxy_set_header Connection "";
            proxy_set_header Content-Length $refused_body_length;
            proxy_set_header Transfer-Encoding "";
            proxy_pass_request_body off;
            proxy_pass {{ $scheme }}://put_datas;
        }

        # The shipper protocols (OTLP logs, Loki push) are put-datas's, with the same
        # body limit and 413 as PutDatas.
        location ~ ^/(v1/logs|loki/api/v1/push)$ {
            client_max_body_size {{ include "logpool.gateway.ingestBodyLimit" . }};
            error_page 413 = @ingest_body_too_large;
            proxy_pass {{ $scheme }}://put_datas;
        }

        # Searches: streamed answers pass through line by line.
        location ~ {{ $pool }}/(search|search/stream|histogram|patterns|fields|schema|export|query|records/[^/]+/context)$ {
            proxy_buffering off;
            proxy_read_timeout {{ $gw.searchReadTimeout }};
            proxy_pass {{ $scheme }}://search_api;
        }

        # Live tail: a WebSocket; tail-ws pings keep it open while no record flows.
        location ~ {{ $pool }}/tail$ {
            {{- include "logpool.gateway.proxyHeaders" . | nindent 12 }}
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_buffering off;
            proxy_read_timeout {{ $gw.tailReadTimeout }};
            proxy_send_timeout {{ $gw.tailReadTimeout }};
            proxy_pass {{ $scheme }}://tail_ws;
        }

        # Queue reads (shards, consumer groups) are tail-ws's as well.
        location ~ {{ $pool }}/(shards|consumer-groups)(/|$) {
            proxy_buffering off;
            proxy_pass {{ $scheme }}://tail_ws;
        }

        # The Elasticsearch-compatible ingest API (`_bulk`) and the discovery calls
        # shippers make first: put-datas, with PutDatas's body limit and answer.
        location = /es {
            proxy_pass {{ $scheme }}://put_datas;
        }
        location ^~ /es/ {
            client_max_body_size {{ include "logpool.gateway.ingestBodyLimit" . }};
            error_page 413 = @ingest_body_too_large;
            proxy_pass {{ $scheme }}://put_datas;

            # Its read API (Grafana's searches and field listings): search-api,
            # with the limits of the other searches.
            location ~ ^/es/([^/]+/)?(_msearch|_search|_mapping|_field_caps)$ {
                client_max_body_size {{ $gw.otherBodyLimit }};
                error_page 413 = @body_too_large;
                proxy_read_timeout {{ $gw.searchReadTimeout }};
                proxy_pass {{ $scheme }}://search_api;
            }
        }

        # The console and everything else of /v1: control-api.
        location / {
            proxy_pass {{ $scheme }}://control_api;
        }
    }
}
{{- end -}}
