//! The Helm chart (helm/logpool) rendered and checked without helm or a cluster:
//! scripts/helm-render (Go's text/template with Sprig, as Helm renders) built with
//! Debian's Go packages, and PyPI `kubernetes-validate --strict` for the manifests.
//! `scripts/test-chart.sh install` (run by scripts/test-all.sh) provides the tools;
//! without them a test is skipped visibly, and fails when LOGPOOL_REQUIRE_ENGINES is
//! set.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// Go 1.19 from Debian's `golang-1.19-go`.
const GO: &str = "/usr/lib/go-1.19/bin/go";
/// Where Debian's Go library packages (Sprig, sigs.k8s.io/yaml) are installed.
const GOPATH: &str = "/usr/share/gocode";

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The chart's directory.
pub fn chart_dir() -> PathBuf {
    workspace().join("helm/logpool")
}

/// Returns `Some(())` when the chart tools are there; otherwise prints a visible skip
/// and returns `None`, or panics when LOGPOOL_REQUIRE_ENGINES is set.
pub fn tools_or_skip(what: &[&str]) -> Option<()> {
    let mut missing = Vec::new();
    for tool in what {
        let found = match *tool {
            "renderer" => renderer().is_ok(),
            "kubernetes-validate" => command_runs("kubernetes-validate", &["--version"]),
            "nginx" => nginx().is_some(),
            other => command_runs(other, &["--version"]),
        };
        if !found {
            let why = match *tool {
                "renderer" => renderer().err().unwrap_or_default(),
                other => format!("{other} is missing"),
            };
            missing.push(why);
        }
    }
    if missing.is_empty() {
        return Some(());
    }
    let message = missing.join("; ");
    assert!(
        std::env::var_os("LOGPOOL_REQUIRE_ENGINES").is_none(),
        "chart tools missing ({message}) but LOGPOOL_REQUIRE_ENGINES is set"
    );
    eprintln!("SKIPPED: {message}; run scripts/test-chart.sh install");
    None
}

fn command_runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// The nginx binary (Debian's `nginx`), if installed.
pub fn nginx() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

/// Builds scripts/helm-render once per test process, next to the test binaries.
pub fn renderer() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if !Path::new(GO).exists() {
                return Err(format!("{GO} is missing (Debian golang-1.19-go)"));
            }
            let target = crate::logpool_binary()
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(std::env::temp_dir);
            let out = target.join(format!("helm-render-{}", std::process::id()));
            let built = Command::new(GO)
                .args(["build", "-o"])
                .arg(&out)
                .arg("./scripts/helm-render")
                .current_dir(workspace())
                .env("GOPATH", GOPATH)
                .env("GO111MODULE", "off")
                .env("GOFLAGS", "")
                .env("GOCACHE", target.join("go-cache"))
                .output()
                .map_err(|e| format!("cannot run {GO}: {e}"))?;
            if !built.status.success() {
                return Err(format!(
                    "scripts/helm-render does not build (Debian golang-github-masterminds-sprig-dev \
                     and golang-k8s-sigs-yaml-dev installed?):\n{}",
                    String::from_utf8_lossy(&built.stderr)
                ));
            }
            // One stable name, replaced atomically, for whoever wants to run it by hand.
            let stable = target.join("helm-render");
            let _ = std::fs::rename(&out, &stable);
            Ok(if stable.exists() { stable } else { out })
        })
        .clone()
}

/// Runs the renderer on `chart` with `values` files and extra arguments; its stdout.
fn run_renderer(chart: &Path, values: &[PathBuf], extra: &[&str]) -> Result<String, String> {
    let mut command = Command::new(renderer()?);
    command.arg("-chart").arg(chart);
    for file in values {
        command.arg("-f").arg(file);
    }
    let out = command
        .args(extra)
        .output()
        .map_err(|e| format!("cannot run helm-render: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Renders into `out` (one file per manifest).
pub fn render_to_dir(chart: &Path, values: &[PathBuf], out: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(out);
    let dir = out.to_string_lossy().into_owned();
    run_renderer(chart, values, &["-output-dir", &dir]).map(|_| ())
}

/// Renders and returns the manifests (as JSON objects).
pub fn render_manifests(chart: &Path, values: &[PathBuf]) -> Result<Vec<Value>, String> {
    let text = run_renderer(chart, values, &["-json"])?;
    let list: Vec<Value> =
        serde_json::from_str(&text).map_err(|e| format!("renderer output: {e}"))?;
    Ok(list
        .into_iter()
        .map(|entry| entry["manifest"].clone())
        .collect())
}

/// Renders and returns the data key `key` of the ConfigMap holding it.
pub fn render_config_key(chart: &Path, values: &[PathBuf], key: &str) -> Result<String, String> {
    run_renderer(chart, values, &["-config-key", key])
}

/// `kubernetes-validate --strict` on every file of `dir`; its output, or why it failed.
pub fn validate_dir(dir: &Path) -> Result<String, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("nothing rendered in {}", dir.display()));
    }
    let out = Command::new("kubernetes-validate")
        .arg("--strict")
        .args(&files)
        .output()
        .map_err(|e| format!("cannot run kubernetes-validate: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// Copies a directory tree (the chart, to break a copy of it).
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
