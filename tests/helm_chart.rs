//! The Helm chart (helm/logpool), rendered as Helm renders it (scripts/helm-render:
//! text/template with Sprig) and every manifest checked with `kubernetes-validate
//! --strict`, for the default values and each set in helm/logpool/ci: high
//! availability (autoscaling, PodDisruptionBudgets), TLS with existing Secrets, and
//! Ingress with a ServiceMonitor. A broken template and an invalid manifest must
//! fail; the binaries and paths the Containerfile and the chart name must exist.
//!
//! Tools: `scripts/test-chart.sh install`; without them the tests skip visibly, and
//! fail when LOGPOOL_REQUIRE_ENGINES is set.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use logpool_e2e::chart::{
    chart_dir, copy_dir, nginx, render_config_key, render_manifests, render_to_dir, tools_or_skip,
    validate_dir, workspace,
};
use serde_json::Value;

/// The value sets: (name, values files over values.yaml).
fn value_sets() -> Vec<(&'static str, Vec<PathBuf>)> {
    let ci = chart_dir().join("ci");
    vec![
        ("defaults", vec![]),
        ("ha", vec![ci.join("ha-values.yaml")]),
        (
            "tls-existing-secrets",
            vec![ci.join("tls-existing-secrets-values.yaml")],
        ),
        (
            "ingress-monitoring",
            vec![ci.join("ingress-monitoring-values.yaml")],
        ),
    ]
}

fn of_kind<'a>(manifests: &'a [Value], kind: &str) -> Vec<&'a Value> {
    manifests.iter().filter(|m| m["kind"] == kind).collect()
}

fn named<'a>(manifests: &'a [Value], kind: &str, name: &str) -> &'a Value {
    manifests
        .iter()
        .find(|m| m["kind"] == kind && m["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

fn names(manifests: &[Value], kind: &str) -> BTreeSet<String> {
    of_kind(manifests, kind)
        .iter()
        .filter_map(|m| m["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

const SERVICES: [&str; 5] = [
    "put-datas",
    "search-api",
    "tail-ws",
    "control-api",
    "loghub",
];

fn all_components() -> BTreeSet<String> {
    SERVICES
        .iter()
        .chain(["gateway"].iter())
        .map(|c| format!("logpool-{c}"))
        .collect()
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

/// The `name` entry of a container's env.
fn env<'a>(deployment: &'a Value, name: &str) -> Option<&'a Value> {
    container(deployment)["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
}

#[test]
fn test_every_value_set_renders_and_passes_kubernetes_validate_strict() {
    if tools_or_skip(&["renderer", "kubernetes-validate"]).is_none() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    for (name, values) in value_sets() {
        let out = work.path().join(name);
        render_to_dir(&chart_dir(), &values, &out).unwrap_or_else(|e| panic!("{name}: {e}"));
        let report = validate_dir(&out).unwrap_or_else(|e| panic!("{name}: invalid:\n{e}"));
        let files = std::fs::read_dir(&out).expect("rendered").count();
        let passed = report.matches(" passed for resource ").count();
        // Only the ServiceMonitor (a CRD) has no built-in schema; it is checked below.
        let unchecked = report
            .matches("Couldn't find schema for kind ServiceMonitor")
            .count();
        assert_eq!(
            passed + unchecked,
            files,
            "{name}: every manifest is checked:\n{report}"
        );
        assert!(passed >= 20, "{name}: {passed} manifests passed:\n{report}");
        println!("{name}: {passed} manifests valid, {unchecked} ServiceMonitor");
    }
}

#[test]
fn test_defaults_deploy_five_services_and_the_gateway_with_probes_and_locked_down_pods() {
    if tools_or_skip(&["renderer"]).is_none() {
        return;
    }
    let manifests = render_manifests(&chart_dir(), &[]).expect("render");
    assert_eq!(names(&manifests, "Deployment"), all_components());
    assert_eq!(names(&manifests, "Service"), all_components());
    assert_eq!(names(&manifests, "PodDisruptionBudget"), all_components());
    assert!(of_kind(&manifests, "HorizontalPodAutoscaler").is_empty());
    assert!(of_kind(&manifests, "Ingress").is_empty());
    assert!(
        of_kind(&manifests, "Job").is_empty(),
        "migrations run at start-up under MySQL's advisory lock"
    );
    assert_eq!(names(&manifests, "Secret"), set(&["logpool-operator-key"]));
    for service in SERVICES {
        let deployment = named(&manifests, "Deployment", &format!("logpool-{service}"));
        let pod = &deployment["spec"]["template"]["spec"];
        let c = container(deployment);
        assert_eq!(
            c["livenessProbe"]["httpGet"]["path"], "/healthz",
            "{service}"
        );
        assert_eq!(
            c["readinessProbe"]["httpGet"]["path"], "/readyz",
            "{service}"
        );
        assert_eq!(
            c["startupProbe"]["httpGet"]["path"], "/healthz",
            "{service}"
        );
        assert_eq!(
            c["securityContext"]["readOnlyRootFilesystem"], true,
            "{service}"
        );
        assert_eq!(
            c["securityContext"]["allowPrivilegeEscalation"], false,
            "{service}"
        );
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{service}");
        // Service links would inject LOGPOOL_*_SERVICE_HOST, read as unknown config keys.
        assert_eq!(pod["enableServiceLinks"], false, "{service}");
        assert!(
            c["resources"]["requests"]["memory"].is_string(),
            "{service}"
        );
        assert_eq!(
            env(deployment, "LOGPOOL_ADMIN_KEY").is_some(),
            service == "control-api",
            "only control-api reads the operator key"
        );
        assert_eq!(
            c["command"][0],
            format!("/usr/local/bin/logpool-{service}").as_str()
        );
    }
    let gateway = named(&manifests, "Deployment", "logpool-gateway");
    let c = container(gateway);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        gateway["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
        true
    );
    assert!(
        c["ports"][0]["containerPort"].as_u64().expect("port") >= 1024,
        "unprivileged port"
    );
    let mounts: Vec<&str> = c["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    assert!(
        mounts.contains(&"/tmp/nginx"),
        "nginx's writable run dir: {mounts:?}"
    );
}

#[test]
fn test_ha_values_autoscale_and_keep_pods_through_disruptions() {
    if tools_or_skip(&["renderer"]).is_none() {
        return;
    }
    let ha = chart_dir().join("ci/ha-values.yaml");
    let manifests = render_manifests(&chart_dir(), &[ha]).expect("render");
    let scaled = set(&[
        "logpool-loghub",
        "logpool-put-datas",
        "logpool-search-api",
        "logpool-gateway",
    ]);
    assert_eq!(names(&manifests, "HorizontalPodAutoscaler"), scaled);
    for name in &scaled {
        let deployment = named(&manifests, "Deployment", name);
        assert!(
            deployment["spec"]["replicas"].is_null(),
            "{name}: the autoscaler owns the replica count"
        );
        let hpa = named(&manifests, "HorizontalPodAutoscaler", name);
        assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], name.as_str());
    }
    assert_eq!(
        named(&manifests, "HorizontalPodAutoscaler", "logpool-loghub")["spec"]["minReplicas"],
        3
    );
    assert_eq!(
        named(&manifests, "PodDisruptionBudget", "logpool-loghub")["spec"]["minAvailable"],
        2
    );
    assert_eq!(
        named(&manifests, "Deployment", "logpool-tail-ws")["spec"]["replicas"],
        3
    );
    // Credentials given as values land in the chart's Secret, never in the ConfigMap.
    let secret = named(&manifests, "Secret", "logpool-engines");
    let keys: BTreeSet<String> = secret["data"]
        .as_object()
        .expect("data")
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        keys,
        set(&[
            "elasticsearch-password",
            "elasticsearch-username",
            "mysql-password",
            "pulsar-admin-token",
            "s3-access-key-id",
            "s3-secret-access-key",
        ])
    );
    let config = named(&manifests, "ConfigMap", "logpool-config")["data"]["logpool.toml"]
        .as_str()
        .expect("toml");
    for secret_value in [
        "example-mysql-password",
        "example-es-password",
        "example-secret-key",
        "example-admin-token",
    ] {
        assert!(
            !config.contains(secret_value),
            "{secret_value} is in the ConfigMap"
        );
    }
    let put = named(&manifests, "Deployment", "logpool-put-datas");
    assert_eq!(
        env(put, "LOGPOOL_METADATA__URL").expect("mysql url")["value"],
        "mysql://logpool:$(MYSQL_PASSWORD)@mysql.db:3306/logpool"
    );
    // The gateway's body limit follows max_body_bytes (20 MiB here).
    let nginx_conf = named(&manifests, "ConfigMap", "logpool-gateway")["data"]["nginx.conf"]
        .as_str()
        .expect("nginx.conf");
    assert!(
        nginx_conf.contains(&format!("client_max_body_size {};", 20971520 + 65536)),
        "{nginx_conf}"
    );
}

#[test]
fn test_tls_values_serve_https_with_existing_secrets_only() {
    if tools_or_skip(&["renderer"]).is_none() {
        return;
    }
    let tls = chart_dir().join("ci/tls-existing-secrets-values.yaml");
    let manifests = render_manifests(&chart_dir(), &[tls]).expect("render");
    assert!(
        of_kind(&manifests, "Secret").is_empty(),
        "every Secret exists already"
    );
    for service in SERVICES {
        let deployment = named(&manifests, "Deployment", &format!("logpool-{service}"));
        assert_eq!(
            container(deployment)["readinessProbe"]["httpGet"]["scheme"],
            "HTTPS"
        );
        let volumes = deployment["spec"]["template"]["spec"]["volumes"].to_string();
        assert!(
            volumes.contains("\"secretName\":\"logpool-tls\""),
            "{service}: {volumes}"
        );
        let secret_of = |name: &str| {
            env(deployment, name).expect(name)["valueFrom"]["secretKeyRef"]["name"].clone()
        };
        assert_eq!(secret_of("MYSQL_PASSWORD"), "logpool-mysql");
        assert_eq!(
            secret_of("LOGPOOL_INDEX__PASSWORD"),
            "logpool-elasticsearch"
        );
        assert_eq!(secret_of("AWS_SECRET_ACCESS_KEY"), "logpool-s3");
        assert_eq!(secret_of("LOGPOOL_QUEUE__ADMIN_TOKEN"), "logpool-pulsar");
    }
    let control = named(&manifests, "Deployment", "logpool-control-api");
    assert_eq!(
        env(control, "LOGPOOL_ADMIN_KEY").expect("key")["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "logpool-operator", "key": "key"})
    );
    let config = named(&manifests, "ConfigMap", "logpool-config")["data"]["logpool.toml"]
        .as_str()
        .expect("toml");
    assert!(
        config.contains("cert_path = \"/etc/logpool/tls/tls.crt\""),
        "{config}"
    );
    let nginx_conf = named(&manifests, "ConfigMap", "logpool-gateway")["data"]["nginx.conf"]
        .as_str()
        .expect("nginx.conf");
    assert!(nginx_conf.contains("listen 8080 ssl;"), "{nginx_conf}");
    assert!(
        nginx_conf.contains("proxy_pass https://put_datas;"),
        "{nginx_conf}"
    );
}

#[test]
fn test_ingress_and_service_monitor_point_at_real_ports() {
    if tools_or_skip(&["renderer"]).is_none() {
        return;
    }
    let values = chart_dir().join("ci/ingress-monitoring-values.yaml");
    let manifests = render_manifests(&chart_dir(), &[values]).expect("render");
    let ingress = named(&manifests, "Ingress", "logpool");
    let backend = &ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"];
    assert_eq!(backend["name"], "logpool-gateway");
    let gateway = named(&manifests, "Service", "logpool-gateway");
    assert_eq!(gateway["spec"]["ports"][0]["name"], backend["port"]["name"]);
    // kubernetes-validate has no schema for this CRD: its fields are checked here.
    let monitor = named(&manifests, "ServiceMonitor", "logpool");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["path"], "/metrics");
    let selected: Vec<&Value> = of_kind(&manifests, "Service")
        .into_iter()
        .filter(|service| {
            let labels = &service["metadata"]["labels"];
            monitor["spec"]["selector"]["matchLabels"]
                .as_object()
                .expect("matchLabels")
                .iter()
                .all(|(k, v)| &labels[k] == v)
                && monitor["spec"]["selector"]["matchExpressions"][0]["values"]
                    .as_array()
                    .expect("values")
                    .contains(&labels["app.kubernetes.io/component"])
        })
        .collect();
    assert_eq!(selected.len(), 5, "the five services, not the gateway");
    for service in selected {
        assert_eq!(service["spec"]["ports"][0]["name"], endpoint["port"]);
    }
    let account = named(&manifests, "ServiceAccount", "logpool");
    assert!(account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].is_string());
}

/// The services' configuration from every value set loads with the product's own
/// loader, engines and all.
#[cfg(feature = "distributed")]
#[test]
fn test_rendered_service_config_loads_as_the_services_load_it() {
    if tools_or_skip(&["renderer"]).is_none() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    for (name, values) in value_sets() {
        let toml = render_config_key(&chart_dir(), &values, "logpool.toml").expect("render");
        let path = work.path().join(format!("{name}.toml"));
        std::fs::write(&path, &toml).expect("write");
        let config = logpool_e2e::Config::load(Some(&path), &Default::default())
            .unwrap_or_else(|e| panic!("{name}: {e:#}\n{toml}"));
        let expected_body = if name == "ha" { 20971520 } else { 10485760 };
        assert_eq!(config.limits.max_body_bytes, expected_body, "{name}");
    }
}

/// nginx itself accepts the gateway configuration the chart renders.
#[test]
fn test_gateway_config_passes_nginx_t() {
    if tools_or_skip(&["renderer", "nginx"]).is_none() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let run = work.path().join("run");
    std::fs::create_dir_all(&run).expect("run dir");
    let local = work.path().join("local-values.yaml");
    std::fs::write(
        &local,
        format!(
            "gateway:\n  runDir: {run}\n  errorLog: {run}/error.log\n  accessLog: {run}/access.log\n  \
             upstreams: {{putDatas: '127.0.0.1:1', searchApi: '127.0.0.1:2', tailWs: '127.0.0.1:3', controlApi: '127.0.0.1:4'}}\n",
            run = run.display()
        ),
    )
    .expect("values");
    let conf = render_config_key(&chart_dir(), &[local], "nginx.conf").expect("render");
    let conf_path = work.path().join("nginx.conf");
    std::fs::write(&conf_path, &conf).expect("conf");
    let nginx = nginx().expect("nginx");
    let out = std::process::Command::new(nginx)
        .arg("-t")
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(work.path())
        .output()
        .expect("nginx -t");
    assert!(
        out.status.success(),
        "nginx -t:\n{}\n{conf}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A template that does not parse, or renders YAML that does not parse, fails the
/// render, naming the file.
#[test]
fn test_a_broken_template_fails_the_render() {
    if tools_or_skip(&["renderer"]).is_none() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let broken = work.path().join("logpool");
    copy_dir(&chart_dir(), &broken).expect("copy chart");
    let render_error = |what: &str| match render_manifests(&broken, &[]) {
        Ok(manifests) => panic!(
            "{what} rendered {} manifests instead of failing",
            manifests.len()
        ),
        Err(error) => error,
    };
    // An `if` that is never closed.
    let file = broken.join("templates/serviceaccount.yaml");
    let original = std::fs::read_to_string(&file).expect("template");
    let unclosed = original.replacen("{{- end }}\n", "", 1);
    assert_ne!(unclosed, original);
    std::fs::write(&file, unclosed).expect("break");
    let error = render_error("an unclosed `if`");
    assert!(error.contains("serviceaccount.yaml"), "{error}");
    std::fs::write(&file, original).expect("restore");
    // Rendered text that is not YAML (an unclosed flow sequence).
    let service = broken.join("templates/_service.tpl");
    let text = std::fs::read_to_string(&service).expect("template");
    let from = "  revisionHistoryLimit: 5\n";
    assert!(text.contains(from));
    std::fs::write(&service, text.replace(from, "  revisionHistoryLimit: [5\n")).expect("break");
    let error = render_error("invalid YAML");
    assert!(error.contains("does not parse"), "{error}");
    // And the untouched chart renders (the failures above are the edits').
    render_manifests(&chart_dir(), &[]).expect("the real chart renders");
}

/// A manifest that renders as YAML but breaks the Kubernetes schema fails
/// validation: a string port, and (strict) a misspelt field.
#[test]
fn test_an_invalid_manifest_fails_kubernetes_validate() {
    if tools_or_skip(&["renderer", "kubernetes-validate"]).is_none() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    for (what, from, to, expect) in [
        (
            "a string containerPort",
            "containerPort: {{ int64 $root.Values.service.port }}",
            "containerPort: {{ $root.Values.service.port | quote }}",
            "containerPort",
        ),
        (
            "a misspelt field",
            "  revisionHistoryLimit: 5\n",
            "  revisionHistoryLimits: 5\n",
            "revisionHistoryLimits",
        ),
    ] {
        let broken = work.path().join(format!("chart-{}", expect));
        copy_dir(&chart_dir(), &broken).expect("copy chart");
        let service = broken.join("templates/_service.tpl");
        let text = std::fs::read_to_string(&service).expect("template");
        assert!(text.contains(from), "the chart no longer has `{from}`");
        std::fs::write(&service, text.replace(from, to)).expect("break");
        let out = work.path().join(format!("out-{expect}"));
        render_to_dir(&broken, &[], &out).expect("still renders");
        let report = validate_dir(&out).expect_err(&format!("{what} must fail validation"));
        assert!(report.contains(expect), "{what}: {report}");
    }
}

/// Every binary and path the Containerfile and the chart name exists: the COPY
/// sources, the cargo feature, the five service binaries (built by the test
/// command), and the chart's commands and mounts agree with the image.
#[test]
fn test_containerfile_and_chart_name_existing_binaries_and_paths() {
    let root = workspace();
    let recipe = std::fs::read_to_string(root.join("Containerfile")).expect("Containerfile");
    for line in recipe.lines() {
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        if rest.starts_with("--from") {
            continue;
        }
        let parts: Vec<&str> = rest.split_whitespace().collect();
        for source in &parts[..parts.len() - 1] {
            assert!(
                root.join(source).exists(),
                "Containerfile copies {source}, which is missing"
            );
        }
    }
    let cargo_toml = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    assert!(recipe.contains("--features logpool-e2e/distributed"));
    assert!(
        cargo_toml.contains("\ndistributed = ["),
        "the root package's `distributed` feature"
    );
    let binaries: Vec<&str> = recipe
        .split("for binary in ")
        .nth(1)
        .and_then(|rest| rest.split("; do").next())
        .expect("the list of installed binaries")
        .split_whitespace()
        .filter(|word| *word != "\\")
        .collect();
    for service in SERVICES {
        let binary = format!("logpool-{service}");
        assert!(
            binaries.contains(&binary.as_str()),
            "the image lacks {binary}: {binaries:?}"
        );
    }
    let built = logpool_e2e::logpool_binary();
    for binary in &binaries {
        let path = built.with_file_name(binary);
        assert!(
            path.exists(),
            "{} is not a binary of this workspace (cargo build --workspace --bins builds it)",
            path.display()
        );
    }
    assert!(recipe.contains("COPY --from=build /out/ /usr/local/bin/"));
    assert!(recipe.contains("USER 65532:65532"));

    if tools_or_skip(&["renderer"]).is_none() {
        return;
    }
    let manifests = render_manifests(&chart_dir(), &[]).expect("render");
    let values = std::fs::read_to_string(chart_dir().join("values.yaml")).expect("values");
    assert!(values.contains("repository: ghcr.io/logpool/logpool"));
    assert!(
        recipe.contains("ghcr.io/logpool/logpool"),
        "the recipe names the chart's image"
    );
    for deployment in of_kind(&manifests, "Deployment") {
        let c = container(deployment);
        let command: Vec<&str> = c["command"]
            .as_array()
            .expect("command")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mounts = c["volumeMounts"].as_array().expect("mounts");
        let mounted = |path: &str| {
            mounts.iter().any(|m| {
                let at = m["mountPath"].as_str().unwrap_or_default();
                path == at || Path::new(path).starts_with(at)
            })
        };
        if let Some(binary) = command[0].strip_prefix("/usr/local/bin/") {
            assert!(binaries.contains(&binary), "{binary} is not in the image");
            assert_eq!(command[1], "--config");
            assert!(mounted(command[2]), "{} is not mounted", command[2]);
            assert!(mounted("/var/lib/logpool"), "data_dir is not writable");
            // The image's user matches the pod's.
            assert_eq!(
                deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"],
                65532
            );
        } else {
            assert_eq!(
                command,
                [
                    "nginx",
                    "-e",
                    "/dev/stderr",
                    "-c",
                    "/etc/nginx/logpool/nginx.conf"
                ]
            );
            assert!(mounted("/etc/nginx/logpool/nginx.conf"));
        }
    }
}

/// Syslog listeners open their ports on the put-datas pods and Service only, with
/// their protocol, and reach the configuration as `[[syslog.listeners]]`.
#[test]
fn test_syslog_listeners_open_ports_on_put_datas_only() {
    if tools_or_skip(&["renderer"]).is_none() {
        return;
    }
    let ci = chart_dir().join("ci");
    let manifests = render_manifests(&chart_dir(), &[ci.join("ha-values.yaml")]).expect("render");
    let service = named(&manifests, "Service", "logpool-put-datas");
    let ports: Vec<(String, i64, String, String)> = service["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|port| {
            (
                port["name"].as_str().unwrap_or_default().to_string(),
                port["port"].as_i64().unwrap_or_default(),
                port["targetPort"].as_str().unwrap_or_default().to_string(),
                port["protocol"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let port = |name: &str, number: i64, target: &str, protocol: &str| {
        (
            name.to_string(),
            number,
            target.to_string(),
            protocol.to_string(),
        )
    };
    assert_eq!(
        ports,
        [
            port("http", 8080, "http", "TCP"),
            port("syslog-0", 601, "syslog-0", "TCP"),
            port("syslog-1", 514, "syslog-1", "UDP"),
        ]
    );
    let deployment = named(&manifests, "Deployment", "logpool-put-datas");
    let container_ports = container(deployment)["ports"].as_array().expect("ports");
    assert_eq!(container_ports[1]["containerPort"], 5601);
    assert_eq!(container_ports[2]["protocol"], "UDP");
    // The other services open no syslog port.
    let search = named(&manifests, "Service", "logpool-search-api");
    assert_eq!(search["spec"]["ports"].as_array().map(Vec::len), Some(1));
    let toml = render_config_key(&chart_dir(), &[ci.join("ha-values.yaml")], "logpool.toml")
        .expect("config");
    assert!(toml.contains("[[syslog.listeners]]"), "{toml}");
    assert!(toml.contains("bind = \"0.0.0.0:5514\""), "{toml}");
    assert!(toml.contains("max_connections = 2000"), "{toml}");
    // A TLS listener without the chart's TLS is refused at render time.
    let work = tempfile::tempdir().expect("tempdir");
    let values = work.path().join("values.yaml");
    std::fs::write(
        &values,
        "syslog:\n  listeners:\n    - {name: s, port: 6514, transport: tls, project: ops, pool: syslog}\n",
    )
    .expect("values");
    let error = render_manifests(&chart_dir(), &[values]).expect_err("tls without tls.enabled");
    assert!(error.contains("tls.enabled"), "{error}");
}
