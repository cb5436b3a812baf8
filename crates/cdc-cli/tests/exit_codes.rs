//! The exit codes of `cdc run` a supervisor acts on (docs/operating.md), and SIGTERM:
//! a clean stop after the final checkpoint exits 0, one whose final checkpoint cannot
//! complete gives up after `pipeline.shutdown.timeout` with 143.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cdc_testkit::S3Server;

fn cdc() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cdc"));
    command.env("XDG_STATE_HOME", "/proc/cdc-tests-choose-a-state-dir");
    command
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn unbounded(dir: &tempfile::TempDir, name: &str, extra: &str) -> std::path::PathBuf {
    write(
        dir,
        &format!("{name}.yaml"),
        &format!(
            "source: {{type: values, unbounded: true}}\nsink: {{type: values}}\npipeline: {{name: {name}, checkpoint.interval: 100ms{extra}}}\n"
        ),
    )
}

fn start(file: &std::path::Path, state: &str, env: &[(&str, String)]) -> Child {
    let mut command = cdc();
    command
        .arg("run")
        .arg(file)
        .arg("--state-dir")
        .arg(state)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().unwrap()
}

fn signal(child: &Child, which: &str) {
    let status = Command::new("kill")
        .args([which, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for `child` to exit, at most `limit`; its exit code and stderr.
fn finish(mut child: Child, limit: Duration) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            return (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
                started.elapsed(),
            );
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_takes_the_final_checkpoint_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let file = unbounded(&dir, "term", "");
    let state = dir.path().join("state");
    let child = start(&file, state.to_str().unwrap(), &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !state.join("checkpoint.json").exists() {
        assert!(Instant::now() < deadline, "no first checkpoint");
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, "-TERM");
    let (code, stderr, _) = finish(child, Duration::from_secs(60));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("SIGTERM: stopping after a final checkpoint"),
        "{stderr}"
    );
}

#[test]
fn usage_and_configuration_errors_exit_1_and_help_exits_0() {
    let out = cdc().arg("run").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = cdc().arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let dir = tempfile::tempdir().unwrap();
    let file = unbounded(&dir, "bad", ", shutdown.timeout: soon");
    let out = cdc()
        .args(["run", "--state-dir", "none"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("shutdown.timeout"), "{stderr}");
}

#[test]
fn an_unreachable_state_store_exits_3_naming_the_url_and_not_the_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let file = unbounded(&dir, "away", "");
    let env = [
        ("AWS_ENDPOINT", "http://127.0.0.1:9".to_string()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "testing-key-id".into()),
        ("AWS_SECRET_ACCESS_KEY", "very-secret-value".into()),
        ("AWS_REGION", "us-east-1".into()),
    ];
    let child = start(&file, "s3://cdc-state/away", &env);
    let (code, stderr, took) = finish(child, Duration::from_secs(120));
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("s3://cdc-state/away") && stderr.contains("did not answer"),
        "{stderr}"
    );
    assert!(!stderr.contains("very-secret-value"), "{stderr}");
    assert!(took < Duration::from_secs(90), "{took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn another_instance_taking_over_the_s3_state_makes_the_first_exit_4() {
    let Some(server) = S3Server::start_or_skip().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = unbounded(&dir, "race", "");
    let url = server.url("race");
    let first = start(&file, &url, &server.env());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let second = start(&file, &url, &server.env());
    let (code, stderr, _) = tokio::task::block_in_place(|| finish(first, Duration::from_secs(60)));
    assert_eq!(code, Some(4), "{stderr}");
    assert!(
        stderr.contains("took over") && stderr.contains(&url),
        "{stderr}"
    );
    signal(&second, "-TERM");
    let (code, stderr, _) = tokio::task::block_in_place(|| finish(second, Duration::from_secs(60)));
    assert_eq!(code, Some(0), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_final_checkpoint_that_cannot_complete_gives_up_after_the_shutdown_timeout_with_143() {
    let Some(server) = S3Server::start_or_skip().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = unbounded(&dir, "stuck", ", shutdown.timeout: 2s");
    let child = start(&file, &server.url("stuck"), &server.env());
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The state store stops answering: the final checkpoint's save hangs.
    server.pause();
    signal(&child, "-TERM");
    let (code, stderr, took) =
        tokio::task::block_in_place(|| finish(child, Duration::from_secs(60)));
    server.resume();
    assert_eq!(code, Some(143), "{stderr}");
    assert!(
        stderr.contains("did not complete within pipeline.shutdown.timeout (2s)"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
}
