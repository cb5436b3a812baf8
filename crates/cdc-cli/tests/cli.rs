//! The `cdc` binary: validate, run, errors, help.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::process::Command;

/// The binary, with the default state directory pointed where it cannot be created: a
/// test that runs a pipeline chooses its state (`--state-dir DIR` or `none`, or its own
/// `XDG_STATE_HOME`) instead of writing into the real home directory.
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

#[test]
fn validate_prints_the_plan_and_hides_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "ok.yaml",
        "source: {type: values}\nsink: {type: values, sink-id: x}\npipeline: {name: demo}\n",
    );
    let out = cdc().arg("validate").arg(&file).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Pipeline 'demo'"), "{stdout}");
    assert!(stdout.contains("source: values"), "{stdout}");
    assert!(stdout.contains("is valid"), "{stdout}");
}

#[test]
fn validate_a_bad_file_gives_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "typo.yaml",
            "source: {type: values, event-sett: x}\nsink: {type: values}\npipeline: {name: p}\n",
            "did you mean 'event-set'",
        ),
        (
            "yaml.yaml",
            "source: {type: values\nsink: x\n",
            "not valid YAML",
        ),
        (
            "missing.yaml",
            "source: {type: values}\npipeline: {name: p}\n",
            "'sink' block is missing",
        ),
    ];
    for (name, text, expected) in cases {
        let file = write(&dir, name, text);
        let out = cdc().arg("validate").arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.starts_with("error: "), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "{stderr}"
        );
    }
    let out = cdc()
        .arg("validate")
        .arg(dir.path().join("nope.yaml"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read pipeline file"));
}

#[test]
fn run_a_bounded_pipeline_exits_zero_and_resumes_from_state() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "run.yaml",
        "source: {type: values}\nsink: {type: values}\npipeline: {name: run-test}\n",
    );
    let state = dir.path().join("state");
    let out = cdc()
        .arg("run")
        .arg(&file)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(state.join("checkpoint.json").exists());
    let out = cdc()
        .arg("run")
        .arg(&file)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("resuming from checkpoint"));
}

#[test]
fn without_a_state_dir_the_state_goes_to_the_default_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "d.yaml",
        "source: {type: values}\nsink: {type: values}\npipeline: {name: default-dir}\n",
    );
    let home = dir.path().join("xdg-state");
    let expected = home.join("cdc").join("default-dir");
    let out = cdc()
        .arg("validate")
        .arg(&file)
        .env("XDG_STATE_HOME", &home)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "state: directory {} (the default",
            expected.display()
        )),
        "{stdout}"
    );
    assert!(!home.exists(), "validate creates nothing");
    for run in 0..2 {
        let out = cdc()
            .arg("run")
            .arg(&file)
            .env("XDG_STATE_HOME", &home)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "state: directory {} (the default for pipeline 'default-dir'",
                expected.display()
            )),
            "{stderr}"
        );
        assert_eq!(
            stderr.contains("resuming from checkpoint"),
            run == 1,
            "{stderr}"
        );
    }
    assert!(expected.join("checkpoint.json").exists());
    assert!(expected.join("owner.json").exists());

    // `--state-dir none`: memory only, said plainly, nothing resumes.
    for _ in 0..2 {
        let out = cdc()
            .args(["run", "--state-dir", "none"])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains("state: memory") && stderr.contains("a restart starts over"),
            "{stderr}"
        );
        assert!(!stderr.contains("resuming"), "{stderr}");
    }
}

#[test]
fn a_second_run_on_a_state_dir_in_use_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "u.yaml",
        "source: {type: values, unbounded: true}\nsink: {type: values}\npipeline: {name: in-use, checkpoint.interval: 100ms}\n",
    );
    let state = dir.path().join("state");
    let mut first = cdc()
        .arg("run")
        .arg(&file)
        .arg("--state-dir")
        .arg(&state)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !state.join("checkpoint.json").exists() {
        assert!(std::time::Instant::now() < deadline, "no first checkpoint");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = cdc()
        .arg("run")
        .arg(&file)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    let _ = first.kill();
    let _ = first.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("in use by pid {} on host ", first.id()))
            && stderr.contains(" since ")
            && stderr.contains("Stop that run first"),
        "{stderr}"
    );
    // The holder is gone (killed): the lock went with it, and the next run resumes.
    let second = cdc()
        .args(["run", "--progress", "never"])
        .arg(&file)
        .arg("--state-dir")
        .arg(&state)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Running once it wrote a checkpoint as the new owner; then SIGTERM: a clean stop after
    // a final checkpoint, exit 0.
    // The epoch of the run that wrote the checkpoint (`"owner": N` in checkpoint.json).
    let checkpoint_owner = || -> Option<String> {
        let text = std::fs::read_to_string(state.join("checkpoint.json")).ok()?;
        let rest = &text[text.find("\"owner\": ")? + 9..];
        Some(rest.chars().take_while(char::is_ascii_digit).collect())
    };
    let killed_owner = checkpoint_owner();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while checkpoint_owner() == killed_owner {
        assert!(
            std::time::Instant::now() < deadline,
            "the next run never checkpointed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(second.id().to_string())
        .status();
    let out = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("resuming from checkpoint"), "{stderr}");
}

#[test]
fn help_and_version_speak_plainly() {
    let out = cdc().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Replicates MySQL / MariaDB into Apache Doris and StarRocks"),
        "{help}"
    );
    assert!(help.contains("validate") && help.contains("run"));
    let out = cdc().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("cdc 0.1.0"));
}

#[test]
fn quickstart_ends_in_sync_and_leaves_nothing_running() {
    if !cdc_testkit::MariaDb::installed_or_skip() {
        return;
    }
    for run in 0..2 {
        let out = cdc()
            .arg("quickstart")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "run {run}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("Verdict: in sync"), "run {run}: {stdout}");
        assert!(
            stdout.contains("ALTER TABLE customers ADD COLUMN phone"),
            "{stdout}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_connect_checks_the_target_credentials() {
    let doris = cdc_testkit::DorisEmulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (password, ok) in [("", true), ("wrong", false)] {
        let file = write(
            &dir,
            "connect.yaml",
            &format!(
                "source: {{type: values}}\nsink: {{type: doris, fenodes: '{}', username: root, password: '{password}'}}\npipeline: {{name: c}}\n",
                doris.fe_address()
            ),
        );
        let out = tokio::task::spawn_blocking(move || {
            cdc()
                .arg("validate")
                .arg("--connect")
                .arg(&file)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.success(), ok, "{stdout}{stderr}");
        if ok {
            assert!(
                stdout.contains("sink: Doris FE answers and accepts the credentials"),
                "{stdout}"
            );
        } else {
            assert!(
                stderr.contains("check the sink's username and password"),
                "{stderr}"
            );
            assert_eq!(
                stderr.matches("Access denied").count(),
                1,
                "said once: {stderr}"
            );
        }
    }
}

#[test]
fn every_example_pipeline_file_validates() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let out = cdc()
            .arg("validate")
            .arg(&path)
            .envs([
                ("MARIADB_HOST", "db"),
                ("MARIADB_PORT", "3306"),
                ("MARIADB_USER", "cdc"),
                ("MARIADB_PASSWORD", "pw"),
                ("MYSQL_HOST", "db"),
                ("MYSQL_PASSWORD", "pw"),
                ("DORIS_FE", "fe:8030"),
                ("DORIS_USER", "root"),
                ("DORIS_PASSWORD", ""),
                ("STARROCKS_FE", "fe"),
                ("STARROCKS_USER", "root"),
                ("STARROCKS_PASSWORD", ""),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("pw\n"),
            "a password was printed"
        );
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} example pipelines found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_connect_checks_the_source_server_and_grants() {
    let Some(db) = cdc_testkit::MariaDb::start_or_skip().await else {
        return;
    };
    db.execute(
        "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); \
         CREATE USER 'weak'@'127.0.0.1' IDENTIFIED BY 'pw'; GRANT SELECT ON *.* TO 'weak'@'127.0.0.1';",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (user, password, ok, expected) in [
        ("root", "", true, "captures 1 table(s): app.t"),
        (
            "weak",
            "pw",
            false,
            "weak lacks REPLICATION SLAVE, REPLICATION CLIENT",
        ),
        (
            "root",
            "nope",
            false,
            "check the source's username and password",
        ),
    ] {
        let file = write(
            &dir,
            "src.yaml",
            &format!(
                "source: {{type: mysql, hostname: 127.0.0.1, port: {}, username: {user}, password: '{password}', tables: 'app.\\.*'}}\n\
                 sink: {{type: values}}\npipeline: {{name: v}}\n",
                db.port()
            ),
        );
        let out = tokio::task::spawn_blocking(move || {
            cdc()
                .arg("validate")
                .arg("--connect")
                .arg(&file)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.success(), ok, "{all}");
        assert!(all.contains(expected), "{user}: {all}");
        assert!(
            !all.contains("'pw'") && !all.contains(": pw"),
            "password printed: {all}"
        );
    }
}

#[test]
fn a_run_that_drops_a_table_is_refused_until_reset() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let all = write(
        &dir,
        "all.yaml",
        "source: {type: values}\nsink: {type: values}\npipeline: {name: reset-test}\n",
    );
    let fewer = write(
        &dir,
        "fewer.yaml",
        "source: {type: values, tables: other.table}\nsink: {type: values}\npipeline: {name: reset-test}\n",
    );
    let run = |file: &std::path::Path, extra: &[&str]| {
        cdc()
            .arg("run")
            .arg(file)
            .arg("--state-dir")
            .arg(&state)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&all, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(&fewer, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no longer captures: default_namespace.table1")
            && stderr.contains("cdc run --reset"),
        "{stderr}"
    );
    let saved = std::fs::read_to_string(state.join("checkpoint.json")).unwrap();
    assert!(
        saved.contains("default_namespace"),
        "the checkpoint is kept"
    );

    let out = run(&fewer, &["--reset"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("--reset: starting over"), "{stderr}");
}

#[test]
fn progress_always_draws_the_live_view() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "p.yaml",
        "source: {type: values}\nsink: {type: values}\npipeline: {name: view}\n",
    );
    let out = cdc()
        .args(["run", "--progress", "always", "--state-dir", "none"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The final state of the view stays on screen after the run.
    assert!(stderr.contains("streaming  5 changes written"), "{stderr}");
    assert!(stderr.contains("pipeline finished"), "{stderr}");
}

#[tokio::test]
async fn the_live_view_shows_the_snapshot_per_table() {
    let Some(db) = cdc_testkit::MariaDb::start_or_skip().await else {
        return;
    };
    let rows: Vec<String> = (1..=3000).map(|i| format!("({i}, 'row {i}')")).collect();
    db.execute(&format!(
        "CREATE DATABASE v; CREATE TABLE v.big (id INT PRIMARY KEY, s VARCHAR(20)); \
         CREATE TABLE v.small (id INT PRIMARY KEY); INSERT INTO v.small VALUES (1), (2); \
         INSERT INTO v.big VALUES {}; ANALYZE TABLE v.big, v.small",
        rows.join(",")
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "snap.yaml",
        &format!(
            "source: {{type: mysql, hostname: 127.0.0.1, port: {}, username: root, password: '', tables: 'v.\\.*', scan.startup.mode: snapshot}}\n\
             sink: {{type: values}}\npipeline: {{name: view-snapshot}}\n",
            db.port()
        ),
    );
    let out = tokio::task::spawn_blocking(move || {
        cdc()
            .args(["run", "--progress", "always", "--state-dir", "none"])
            .arg(&file)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The view's last frame stays on screen.
    assert!(
        stderr.contains("snapshot  2/2 tables  3,002 rows"),
        "{stderr}"
    );
    assert!(
        stderr.contains("snapshot done  3,002 changes written"),
        "{stderr}"
    );
}

/// The cases: secret values with quotes, `: `, `#`, `0x..`, backslashes and line
/// breaks validate (substituted after parsing, never re-read as YAML), and neither the
/// plan, nor a validation error, nor a log line shows them.
#[test]
fn substituted_secrets_keep_their_text_and_never_show() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/mariadb-to-doris.yaml");
    let secrets = [
        "S3cr3t\"x",
        "a: b",
        "0x1F",
        "ab #cd",
        "back\\slash\\n\\\"q",
        "line one\nline two",
    ];
    for secret in secrets {
        let out = cdc()
            .arg("validate")
            .arg(&example)
            .envs([
                ("MARIADB_HOST", "db"),
                ("MARIADB_PORT", "3306"),
                ("MARIADB_USER", "cdc"),
                ("MARIADB_PASSWORD", secret),
                ("DORIS_FE", "fe:8030"),
                ("DORIS_USER", "a: b"),
                ("DORIS_PASSWORD", secret),
            ])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{secret:?}: {text}");
        assert!(!text.contains(secret), "{secret:?} shown: {text}");
    }
    // A validation error about a value that came from a secret file names the option, not
    // the value; the file itself is read exactly.
    let dir = tempfile::tempdir().unwrap();
    let secret_file = write(&dir, "pw", "not-a-number: 0x1F #x\n");
    let file = write(
        &dir,
        "bad.yaml",
        &format!(
            "source: {{type: values, batch-size: \"${{file:{}}}\"}}\nsink: {{type: values}}\npipeline: {{name: p}}\n",
            secret_file.display()
        ),
    );
    let out = cdc().arg("validate").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("batch-size"), "{stderr}");
    assert!(!stderr.contains("not-a-number: 0x1F #x"), "{stderr}");
}

/// `ssl.mode: preferred` (the default) against a server without TLS connects in plaintext
/// and says so loudly: a WARN naming the server, and the plan's security line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_fallback_is_a_warning_naming_the_server() {
    let Some(db) = cdc_testkit::MariaDb::start_with_args_or_skip(&["--skip-ssl"]).await else {
        return;
    };
    db.execute("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "src.yaml",
        &format!(
            "source: {{type: mysql, hostname: 127.0.0.1, port: {}, username: root, password: '', tables: 'app.\\.*'}}\n\
             sink: {{type: values}}\npipeline: {{name: v}}\n",
            db.port()
        ),
    );
    let out = tokio::task::spawn_blocking(move || {
        cdc()
            .arg("validate")
            .arg("--connect")
            .arg(&file)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{stderr}");
    let warning = stderr
        .lines()
        .find(|l| l.contains("PLAINTEXT"))
        .unwrap_or_else(|| panic!("no plaintext warning: {stderr}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains(&format!("127.0.0.1:{}", db.port())),
        "{warning}"
    );
    assert!(
        stdout.contains("plaintext: the server offers no TLS"),
        "{stdout}"
    );
}
