{{/*
Environment of every service container: its advertised address, and the secrets
that stay out of the ConfigMap. Names outside LOGPOOL_* (MYSQL_PASSWORD) are not
read as configuration; Kubernetes expands $(MYSQL_PASSWORD) in the URL below.
*/}}
{{- define "logpool.secretEnv" -}}
{{- $root := . -}}
{{- $engines := .Values.engines -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: LOGPOOL_ADVERTISE_ADDRESS
  value: "$(POD_IP):{{ .Values.service.port }}"
{{- $mysqlSecret := $engines.mysql.auth.existingSecret | default (ternary (include "logpool.engineSecretName" $root) "" (ne $engines.mysql.auth.password "")) }}
{{- if $mysqlSecret }}
- name: MYSQL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $mysqlSecret }}
      key: {{ $engines.mysql.auth.passwordKey }}
- name: LOGPOOL_METADATA__URL
  value: {{ printf "mysql://%s:$(MYSQL_PASSWORD)@%s:%d/%s" $engines.mysql.user $engines.mysql.host (int64 $engines.mysql.port) $engines.mysql.database | quote }}
{{- end }}
{{- $esSecret := $engines.elasticsearch.auth.existingSecret | default (ternary (include "logpool.engineSecretName" $root) "" (ne $engines.elasticsearch.auth.username "")) }}
{{- if $esSecret }}
- name: LOGPOOL_INDEX__USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $esSecret }}
      key: {{ $engines.elasticsearch.auth.usernameKey }}
- name: LOGPOOL_INDEX__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $esSecret }}
      key: {{ $engines.elasticsearch.auth.passwordKey }}
{{- end }}
{{- $s3Secret := $engines.s3.credentials.existingSecret | default (ternary (include "logpool.engineSecretName" $root) "" (ne $engines.s3.credentials.accessKeyId "")) }}
{{- if $s3Secret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $s3Secret }}
      key: {{ $engines.s3.credentials.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $s3Secret }}
      key: {{ $engines.s3.credentials.secretAccessKeyKey }}
{{- end }}
{{- $tokenSecret := $engines.pulsar.adminToken.existingSecret | default (ternary (include "logpool.engineSecretName" $root) "" (ne $engines.pulsar.adminToken.value "")) }}
{{- if $tokenSecret }}
- name: LOGPOOL_QUEUE__ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $tokenSecret }}
      key: {{ $engines.pulsar.adminToken.secretKey }}
{{- end }}
{{- end -}}

{{/*
One logpool service: Deployment, Service, PodDisruptionBudget and (optional)
HorizontalPodAutoscaler. Call with
(dict "root" $ "component" "put-datas" "values" .Values.putDatas).
*/}}
{{- define "logpool.service" -}}
{{- $root := .root -}}
{{- $values := .values -}}
{{- $name := include "logpool.componentName" . -}}
{{- $scheme := include "logpool.scheme" $root | upper -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "logpool.componentLabels" . | nindent 4 }}
spec:
  {{- if not $values.autoscaling.enabled }}
  replicas: {{ int64 $values.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "logpool.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "logpool.selectorLabels" . | nindent 8 }}
      annotations:
        # A changed configuration rolls the pods.
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        {{- with $values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "logpool.serviceAccountName" $root }}
      # Service links would add LOGPOOL_*_SERVICE_HOST variables, which the services
      # would read as (unknown) configuration keys.
      enableServiceLinks: false
      automountServiceAccountToken: {{ $root.Values.serviceAccount.create }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: 40
      containers:
        - name: {{ .component }}
          image: {{ include "logpool.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["/usr/local/bin/logpool-{{ .component }}", "--config", "/etc/logpool/logpool.toml"]
          env:
            {{- include "logpool.secretEnv" $root | nindent 12 }}
            {{- if eq .component "control-api" }}
            - name: LOGPOOL_ADMIN_KEY
              valueFrom:
                secretKeyRef:
                  name: {{ include "logpool.operatorKeySecretName" $root }}
                  key: {{ $root.Values.operatorKey.secretKey }}
            {{- end }}
            {{- with $values.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            - name: http
              containerPort: {{ int64 $root.Values.service.port }}
              protocol: TCP
            {{- if eq .component "put-datas" }}
            {{- include "logpool.syslogPorts" (dict "root" $root "container" true) | nindent 12 }}
            {{- end }}
          startupProbe:
            httpGet: {path: /healthz, port: http, scheme: {{ $scheme }}}
            {{- toYaml $root.Values.probes.startup | nindent 12 }}
          livenessProbe:
            httpGet: {path: /healthz, port: http, scheme: {{ $scheme }}}
            {{- toYaml $root.Values.probes.liveness | nindent 12 }}
          readinessProbe:
            httpGet: {path: /readyz, port: http, scheme: {{ $scheme }}}
            {{- toYaml $root.Values.probes.readiness | nindent 12 }}
          resources:
            {{- toYaml $values.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - name: config
              mountPath: /etc/logpool/logpool.toml
              subPath: logpool.toml
              readOnly: true
            - name: scratch
              mountPath: /var/lib/logpool
            - name: tmp
              mountPath: /tmp
            {{- if $root.Values.tls.enabled }}
            - name: tls
              mountPath: /etc/logpool/tls
              readOnly: true
            {{- end }}
      volumes:
        - name: config
          configMap:
            name: {{ include "logpool.fullname" $root }}-config
        - name: scratch
          emptyDir:
            sizeLimit: {{ $root.Values.scratch.sizeLimit }}
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        {{- if $root.Values.tls.enabled }}
        - name: tls
          secret:
            secretName: {{ include "logpool.tlsSecretName" $root }}
        {{- end }}
      {{- with $values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "logpool.componentLabels" . | nindent 4 }}
spec:
  type: {{ $root.Values.service.type }}
  selector:
    {{- include "logpool.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ int64 $root.Values.service.port }}
      targetPort: http
      protocol: TCP
    {{- if eq .component "put-datas" }}
    {{- include "logpool.syslogPorts" (dict "root" $root "container" false) | nindent 4 }}
    {{- end }}
{{- include "logpool.pdbAndHpa" (dict "root" $root "component" .component "values" $values "kind" "Deployment") }}
{{- end -}}

{{/* PodDisruptionBudget and HorizontalPodAutoscaler of one Deployment, when enabled. */}}
{{- define "logpool.pdbAndHpa" -}}
{{- $name := include "logpool.componentName" . -}}
{{- $values := .values -}}
{{- if $values.pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  labels:
    {{- include "logpool.componentLabels" . | nindent 4 }}
spec:
  {{- if hasKey $values.pdb "minAvailable" }}
  minAvailable: {{ $values.pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $values.pdb.maxUnavailable | default 1 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "logpool.selectorLabels" . | nindent 6 }}
{{- end }}
{{- if $values.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  labels:
    {{- include "logpool.componentLabels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $name }}
  minReplicas: {{ int64 $values.autoscaling.minReplicas }}
  maxReplicas: {{ int64 $values.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ int64 $values.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
{{- end -}}


{{/*
The ports of the syslog listeners (put-datas only): on the container when
"container" is true (`port`), else on the Service (`servicePort`, default `port`).
Named syslog-0, syslog-1, ... in the order of syslog.listeners.
*/}}
{{- define "logpool.syslogPorts" -}}
{{- range $i, $listener := .root.Values.syslog.listeners }}
- name: syslog-{{ $i }}
  {{- if $.container }}
  containerPort: {{ int64 $listener.port }}
  {{- else }}
  port: {{ int64 ($listener.servicePort | default $listener.port) }}
  targetPort: syslog-{{ $i }}
  {{- end }}
  protocol: {{ ternary "UDP" "TCP" (eq ($listener.transport | default "tcp") "udp") }}
{{- end }}
{{- end -}}
