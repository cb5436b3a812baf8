//! TLS to the server, against private MariaDB servers with certificates made by the test
//! kit: every `ssl.mode`, CA and host-name checks, client certificates, servers without TLS,
//! and the errors a user meets, each saying what and what to do, at once (not retried).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

#[path = "common/harness.rs"]
mod harness;

use std::time::Duration;

use cdc_api::{FactoryContext, Options, Source, SourceFactory};
use cdc_connector_mysql::MySqlSourceFactory;
use cdc_testkit::{MariaDb, TestTls};

/// A MariaDB serving TLS with `tls`'s certificates, with a user `tls` (REQUIRE SSL) and a
/// user `x509` (REQUIRE X509), both with password `pw`, and a table `d.t`.
async fn tls_server(tls: &TestTls) -> Option<MariaDb> {
    let args = tls.mariadb_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let db = MariaDb::start_with_args_or_skip(&args).await?;
    db.execute(
        "CREATE USER 'tls'@'%' IDENTIFIED BY 'pw' REQUIRE SSL; \
         GRANT ALL PRIVILEGES ON *.* TO 'tls'@'%'; \
         CREATE USER 'x509'@'%' IDENTIFIED BY 'pw' REQUIRE X509; \
         GRANT ALL PRIVILEGES ON *.* TO 'x509'@'%'; \
         CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(20)); \
         INSERT INTO d.t VALUES (1, 'one'), (2, 'two');",
    )
    .await
    .unwrap();
    Some(db)
}

/// The MySQL source for the server on `port` as user `user` (password `pw`, none for root),
/// with more options.
fn create(
    port: u16,
    host: &str,
    user: &str,
    extra: &[(&str, &str)],
) -> cdc_api::Result<Box<dyn Source>> {
    let mut options = Options::new("source");
    let port = port.to_string();
    let password = if user == "root" { "" } else { "pw" };
    for (k, v) in [
        ("hostname", host),
        ("port", port.as_str()),
        ("username", user),
        ("password", password),
        ("tables", "d\\.t"),
        ("server-id", "5999"),
    ] {
        options.insert(k, v);
    }
    for (k, v) in extra {
        options.insert(*k, *v);
    }
    MySqlSourceFactory.create(&FactoryContext {
        pipeline_name: "tls".into(),
        options,
        pipeline_options: Options::new("pipeline"),
    })
}

fn source(db: &MariaDb, host: &str, user: &str, extra: &[(&str, &str)]) -> Box<dyn Source> {
    create(db.port(), host, user, extra).unwrap()
}

/// `cdc validate --connect`'s lines, or its error.
async fn preflight(
    db: &MariaDb,
    host: &str,
    user: &str,
    extra: &[(&str, &str)],
) -> Result<Vec<String>, String> {
    source(db, host, user, extra)
        .preflight()
        .await
        .map_err(|e| e.to_string())
}

/// The preflight line that says how the connection is secured.
async fn security_line(db: &MariaDb, host: &str, user: &str, extra: &[(&str, &str)]) -> String {
    let lines = preflight(db, host, user, extra).await.unwrap();
    eprintln!("{extra:?}: {lines:?}");
    lines
        .into_iter()
        .find(|l| l.starts_with("TLS") || l.starts_with("plaintext"))
        .unwrap()
}

/// The error of a connection that must fail; it must fail at once, not after retries.
async fn refused(db: &MariaDb, host: &str, user: &str, extra: &[(&str, &str)]) -> String {
    let err = preflight(db, host, user, extra).await.unwrap_err();
    eprintln!("{extra:?}: {err}");
    assert!(
        !err.contains("attempts (connect.max-retries)"),
        "a TLS failure must not be retried: {err}"
    );
    err
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_snapshots_and_streams_over_tls() {
    let tls = TestTls::generate().unwrap();
    let Some(db) = tls_server(&tls).await else {
        return;
    };
    // The user can only log in over TLS: the snapshot and the binlog connection both are.
    let yaml = format!(
        "source:\n  type: mysql\n  hostname: 127.0.0.1\n  port: {}\n  username: tls\n  password: pw\n  \
         tables: 'd\\.t'\n  ssl.mode: required\n\
         sink: {{type: values, sink-id: tls_required}}\n\
         pipeline: {{name: tls_required, checkpoint.interval: 100ms}}\n",
        db.port()
    );
    let handle = harness::build(&yaml).unwrap().spawn();
    harness::wait_equal(
        &db,
        "tls_required",
        &["d.t"],
        Some(&handle),
        Duration::from_secs(60),
    )
    .await;
    db.execute("INSERT INTO d.t VALUES (3, 'three'); UPDATE d.t SET v = 'uno' WHERE id = 1")
        .await
        .unwrap();
    harness::wait_equal(
        &db,
        "tls_required",
        &["d.t"],
        Some(&handle),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(harness::check_exactly_once("tls_required"), 4);
    handle.stop();
    handle.join().await.unwrap();

    // The session itself reports its cipher.
    let line = security_line(&db, "127.0.0.1", "tls", &[("ssl.mode", "required")]).await;
    assert!(
        line.starts_with("TLS (TLS_") && line.contains("certificate not verified"),
        "{line}"
    );
    // preferred (the default) uses TLS when the server offers it.
    let line = security_line(&db, "127.0.0.1", "tls", &[]).await;
    assert!(
        line.starts_with("TLS (TLS_") && line.contains("ssl.mode preferred"),
        "{line}"
    );
    // disabled: the REQUIRE SSL account is refused, and the hint says why that may be.
    let err = refused(&db, "127.0.0.1", "tls", &[("ssl.mode", "disabled")]).await;
    assert!(err.contains("1045") && err.contains("REQUIRE SSL"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_ca_and_client_certificates() {
    let tls = TestTls::generate().unwrap();
    let other = TestTls::generate().unwrap();
    let Some(db) = tls_server(&tls).await else {
        return;
    };
    let ca = path(tls.ca_path());
    let wrong_ca = path(other.ca_path());

    for mode in ["verify-ca", "verify-identity"] {
        let line = security_line(
            &db,
            "127.0.0.1",
            "tls",
            &[("ssl.mode", mode), ("ssl.ca", ca)],
        )
        .await;
        assert!(
            line.starts_with("TLS (TLS_") && line.contains("verified"),
            "{line}"
        );
        let err = refused(
            &db,
            "127.0.0.1",
            "tls",
            &[("ssl.mode", mode), ("ssl.ca", wrong_ca)],
        )
        .await;
        assert!(
            err.contains("the server's TLS certificate is not trusted") && err.contains("ssl.ca"),
            "{err}"
        );
    }
    // ssl.ca alone means verify-ca.
    let line = security_line(&db, "127.0.0.1", "tls", &[("ssl.ca", ca)]).await;
    assert!(line.contains("ssl.mode verify-ca"), "{line}");
    // verify-identity by host name (the certificate holds localhost and 127.0.0.1).
    let line = security_line(
        &db,
        "localhost",
        "tls",
        &[("ssl.mode", "verify-identity"), ("ssl.ca", ca)],
    )
    .await;
    assert!(line.contains("certificate verified for"), "{line}");

    // REQUIRE X509: a certificate from the server's CA logs in, none does not, and one from
    // another CA is refused in the handshake.
    let (cert, key) = tls.client_cert("cdc").unwrap();
    let line = security_line(
        &db,
        "127.0.0.1",
        "x509",
        &[
            ("ssl.mode", "verify-identity"),
            ("ssl.ca", ca),
            ("ssl.cert", path(&cert)),
            ("ssl.key", path(&key)),
        ],
    )
    .await;
    assert!(line.starts_with("TLS (TLS_"), "{line}");
    let line = security_line(
        &db,
        "127.0.0.1",
        "x509",
        &[("ssl.cert", path(&cert)), ("ssl.key", path(&key))],
    )
    .await;
    assert!(line.contains("ssl.mode preferred"), "{line}");
    let err = refused(&db, "127.0.0.1", "x509", &[("ssl.mode", "required")]).await;
    assert!(
        err.contains("1045") && err.contains("ssl.cert and ssl.key"),
        "{err}"
    );
    let (stranger_cert, stranger_key) = other.client_cert("stranger").unwrap();
    let err = refused(
        &db,
        "127.0.0.1",
        "x509",
        &[
            ("ssl.mode", "required"),
            ("ssl.cert", path(&stranger_cert)),
            ("ssl.key", path(&stranger_key)),
        ],
    )
    .await;
    assert!(
        err.contains("the server refused the TLS handshake") && err.contains("ssl.cert"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_names_are_checked_by_verify_identity_only() {
    let tls = TestTls::generate_for(&["localhost"]).unwrap();
    let Some(db) = tls_server(&tls).await else {
        return;
    };
    let ca = path(tls.ca_path());
    let identity = [("ssl.mode", "verify-identity"), ("ssl.ca", ca)];
    // The certificate is for localhost only.
    let err = refused(&db, "127.0.0.1", "tls", &identity).await;
    assert!(
        err.contains("the server's TLS certificate is not for this host")
            && err.contains("127.0.0.1")
            && err.contains("localhost")
            && err.contains("ssl.server-name"),
        "{err}"
    );
    let line = security_line(&db, "localhost", "tls", &identity).await;
    assert!(
        line.contains("certificate verified for localhost"),
        "{line}"
    );
    let line = security_line(
        &db,
        "127.0.0.1",
        "tls",
        &[
            ("ssl.mode", "verify-identity"),
            ("ssl.ca", ca),
            ("ssl.server-name", "localhost"),
        ],
    )
    .await;
    assert!(
        line.contains("certificate verified for localhost"),
        "{line}"
    );
    // verify-ca checks the chain, not the name: 127.0.0.1 is fine, also for the whole
    // snapshot and binlog (every connection made with what the first one learned).
    let line = security_line(
        &db,
        "127.0.0.1",
        "tls",
        &[("ssl.mode", "verify-ca"), ("ssl.ca", ca)],
    )
    .await;
    assert!(
        line.contains("certificate verified against ssl.ca"),
        "{line}"
    );
    let mut src = source(
        &db,
        "127.0.0.1",
        "tls",
        &[("ssl.mode", "verify-ca"), ("ssl.ca", ca)],
    );
    src.open(None).await.unwrap();
    db.execute("INSERT INTO d.t VALUES (3, 'three')")
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut rows = 0;
    while rows < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "saw {rows} of 3 rows"
        );
        let batch = src.next_batch().await.unwrap().expect("the source ended");
        rows += batch
            .iter()
            .filter(|e| matches!(e, cdc_api::Event::DataChange(_)))
            .count();
    }
    src.close().await.unwrap();
    // A wrong CA stays wrong under verify-ca.
    let other = TestTls::generate_for(&["localhost"]).unwrap();
    let err = refused(
        &db,
        "127.0.0.1",
        "tls",
        &[("ssl.mode", "verify-ca"), ("ssl.ca", path(other.ca_path()))],
    )
    .await;
    assert!(err.contains("not trusted"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_without_names_works_with_required_and_is_explained_under_verify_ca() {
    let tls = TestTls::generate_for(&[]).unwrap();
    let Some(db) = tls_server(&tls).await else {
        return;
    };
    let line = security_line(&db, "127.0.0.1", "tls", &[("ssl.mode", "required")]).await;
    assert!(line.starts_with("TLS (TLS_"), "{line}");
    let err = refused(
        &db,
        "127.0.0.1",
        "tls",
        &[("ssl.mode", "verify-ca"), ("ssl.ca", path(tls.ca_path()))],
    )
    .await;
    assert!(
        err.contains("names no host") && err.contains("subjectAltName"),
        "{err}"
    );
    // A server that accepts only TLS (MariaDB answers 1045): the hint names the cause.
    db.execute("SET GLOBAL require_secure_transport = ON")
        .await
        .unwrap();
    let err = refused(&db, "127.0.0.1", "root", &[("ssl.mode", "disabled")]).await;
    assert!(
        err.contains("1045") && err.contains("require_secure_transport"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_tls() {
    // --skip-ssl: also servers that would make a certificate of their own offer no TLS.
    let Some(db) = MariaDb::start_with_args_or_skip(&["--skip-ssl"]).await else {
        return;
    };
    db.execute("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let tls = TestTls::generate().unwrap();
    let ca = path(tls.ca_path());
    for extra in [
        vec![("ssl.mode", "required")],
        vec![("ssl.mode", "verify-ca"), ("ssl.ca", ca)],
        vec![("ssl.mode", "verify-identity")],
    ] {
        let err = refused(&db, "127.0.0.1", "root", &extra).await;
        assert!(
            err.contains("the server does not offer TLS, which ssl.mode requires")
                && err.contains("ssl.mode: preferred"),
            "{extra:?}: {err}"
        );
    }
    let line = security_line(&db, "127.0.0.1", "root", &[]).await;
    assert!(
        line.starts_with("plaintext: the server offers no TLS (ssl.mode preferred"),
        "{line}"
    );
    let line = security_line(&db, "127.0.0.1", "root", &[("ssl.mode", "disabled")]).await;
    assert_eq!(line, "plaintext (ssl.mode disabled)");

    // Under preferred the snapshot and the binlog still work: each binlog connection tries
    // TLS first again, and falls back to plaintext (with a warning) while there is none.
    db.execute("ALTER TABLE d.t ADD COLUMN v VARCHAR(10); INSERT INTO d.t VALUES (1, 'one')")
        .await
        .unwrap();
    let yaml = format!(
        "source:\n  type: mysql\n  hostname: 127.0.0.1\n  port: {}\n  username: root\n  password: ''\n  \
         tables: 'd\\.t'\n\
         sink: {{type: values, sink-id: tls_preferred_plain}}\n\
         pipeline: {{name: tls_preferred_plain, checkpoint.interval: 100ms}}\n",
        db.port()
    );
    let handle = harness::build(&yaml).unwrap().spawn();
    harness::wait_equal(
        &db,
        "tls_preferred_plain",
        &["d.t"],
        Some(&handle),
        Duration::from_secs(60),
    )
    .await;
    db.execute("INSERT INTO d.t VALUES (2, 'two')")
        .await
        .unwrap();
    harness::wait_equal(
        &db,
        "tls_preferred_plain",
        &["d.t"],
        Some(&handle),
        Duration::from_secs(60),
    )
    .await;
    handle.stop();
    handle.join().await.unwrap();
}

#[test]
fn bad_tls_options_are_named_before_connecting() {
    let tls = TestTls::generate().unwrap();
    let other = TestTls::generate().unwrap();
    let (cert, key) = tls.client_cert("c").unwrap();
    let (_, other_key) = other.client_cert("c").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let missing = dir.path().join("missing.pem");
    let ca = path(tls.ca_path());
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("ssl.mode", "on")],
            "option 'source.ssl.mode': 'on' is not one of disabled, preferred, required, verify-ca, verify-identity",
        ),
        (
            vec![("ssl.cert", path(&cert))],
            "source.ssl.cert': needs ssl.key",
        ),
        (
            vec![("ssl.key", path(&key))],
            "source.ssl.key': needs ssl.cert",
        ),
        (
            vec![("ssl.mode", "verify-ca"), ("ssl.ca", path(&missing))],
            "source.ssl.ca': cannot read",
        ),
        (
            vec![("ssl.mode", "verify-ca"), ("ssl.ca", path(&not_pem))],
            "holds no certificate",
        ),
        (
            vec![("ssl.cert", path(&cert)), ("ssl.key", path(&not_pem))],
            "holds no private key",
        ),
        (
            vec![("ssl.cert", path(&cert)), ("ssl.key", path(&other_key))],
            "does not belong to the certificate in ssl.cert",
        ),
        (vec![("ssl.mode", "verify-ca")], "set ssl.ca"),
        (
            vec![("ssl.mode", "required"), ("ssl.ca", ca)],
            "source.ssl.ca': is only used to verify the server",
        ),
        (
            vec![
                ("ssl.mode", "disabled"),
                ("ssl.cert", path(&cert)),
                ("ssl.key", path(&key)),
            ],
            "has no effect with ssl.mode: disabled",
        ),
        (
            vec![("ssl.server-name", "not a name")],
            "is not a DNS name or IP address",
        ),
        (
            vec![("jdbc.properties.sslMode", "VERIFY_CA")],
            "verify-ca checks the server's certificate against ssl.ca",
        ),
        (
            vec![
                ("ssl.mode", "required"),
                ("jdbc.properties.useSSL", "false"),
            ],
            "source.jdbc.properties.useSSL': means ssl.mode disabled but ssl.mode is required",
        ),
        (
            vec![(
                "jdbc.properties.trustCertificateKeyStoreUrl",
                "file:/ks.jks",
            )],
            "Java key stores cannot be read here",
        ),
        (
            vec![("debezium.database.ssl.mode", "required")],
            "TLS is set with ssl.mode",
        ),
    ];
    for (extra, expected) in cases {
        let err = create(3306, "127.0.0.1", "u", &extra)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{extra:?}: {err}");
        if expected.contains("cannot read") {
            assert!(err.contains("missing.pem"), "{err}");
        }
    }
}
