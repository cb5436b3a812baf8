//! `scan.parse.online.schema.changes.enabled`: gh-ost and pt-online-schema-change
//! migrations of a captured table, live on MariaDB. The tools are not installed: their
//! statement sequences are reproduced (gh-ost: go/logic/applier.go; pt-osc:
//! bin/pt-online-schema-change), including the shadow's row copy and the changes applied to
//! it from the binlog (gh-ost) or by triggers (pt-osc), while a writer keeps changing the
//! original. The target must see the ALTER and nothing else: no drop, create or truncate
//! of the table, no row of the tools' tables, every row change exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

#[path = "common/harness.rs"]
mod harness;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cdc_api::{Event, OperationType, SchemaChangeEvent, TableId};
use cdc_runtime::{MemoryStateStore, PipelineHandle};
use cdc_testkit::{MariaDb, values_database};
use mysql_async::prelude::Queryable;

/// Rows of `d.t` at start, ids 2, 4, … (the writer inserts odd ones and ones above).
const ROWS: i64 = 300;

/// Which tool's shadow the writer keeps in step, as the tool would.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tool {
    /// gh-ost reads the original's changes from the binlog and applies them to `_t_gho`
    /// (`replace into` / `update` / `delete`) after they committed.
    GhOst,
    /// pt-osc's triggers write into `_t_new` inside the original's transaction.
    PtOsc,
}

fn pipeline_yaml(db: &MariaDb, sink: &str, server_id: u32) -> String {
    // `tables` matches the tools' tables too: they must still not be captured.
    harness::yaml(
        db,
        sink,
        "d.\\.*",
        &format!(
            "  scan.parse.online.schema.changes.enabled: true\n  scan.binlog.newly-added-table.enabled: true\n  server-id: {server_id}\n"
        ),
    )
    // The source's events as they are (lenient would rewrite drops).
    .replace(
        "checkpoint.interval: 100ms",
        "checkpoint.interval: 100ms, schema.change.behavior: evolve",
    )
}

async fn setup(db: &MariaDb) {
    let values: Vec<String> = (1..=ROWS)
        .map(|i| format!("({}, 'row {i}', {})", i * 2, i * 10))
        .collect();
    db.execute(&format!(
        "CREATE DATABASE d; \
         CREATE TABLE d.t (id INT PRIMARY KEY, a VARCHAR(20), b INT) DEFAULT CHARSET=utf8mb4; \
         INSERT INTO d.t VALUES {};",
        values.join(", ")
    ))
    .await
    .unwrap();
}

/// Random inserts, updates and deletes on `d.t` until `stop`; with gh-ost each committed
/// change is then applied to the shadow as gh-ost's binlog applier does.
async fn write(db_url: String, tool: Tool, seed: u64, stop: Arc<AtomicBool>) -> usize {
    let mut conn = mysql_async::Conn::from_url(db_url).await.unwrap();
    let mut rng = harness::Rng::new(seed);
    let mut keys: Vec<i64> = (1..=ROWS).map(|i| i * 2).collect();
    let mut next = ROWS * 2 + 1;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let pick = rng.below(10);
        let at = rng.below(keys.len() as u64) as usize;
        let (on_t, on_shadow) = match (pick, keys.get(at).copied()) {
            (0..=3, _) | (_, None) => {
                // Odd keys land among the copied ones, high ones after them.
                let k = if rng.below(2) == 0 {
                    next += 1;
                    next
                } else {
                    let mut k = (rng.below(ROWS as u64) as i64 * 2) | 1;
                    while keys.contains(&k) {
                        k += 2;
                    }
                    k
                };
                keys.push(k);
                let v = rng.below(1000);
                (
                    format!("INSERT INTO d.t (id, a, b) VALUES ({k}, 'ins {v}', {v})"),
                    format!("REPLACE INTO d._t_gho (id, a, b) VALUES ({k}, 'ins {v}', {v})"),
                )
            }
            (4..=6, Some(k)) => {
                let v = rng.below(1000);
                (
                    format!("UPDATE d.t SET a = 'upd {v}', b = b + 1 WHERE id = {k}"),
                    format!(
                        "UPDATE d._t_gho SET a = 'upd {v}', b = (SELECT b FROM d.t WHERE id = {k}) WHERE id = {k}"
                    ),
                )
            }
            (_, Some(k)) => {
                keys.swap_remove(at);
                (
                    format!("DELETE FROM d.t WHERE id = {k}"),
                    format!("DELETE FROM d._t_gho WHERE id = {k}"),
                )
            }
        };
        conn.query_drop(&on_t).await.unwrap();
        if tool == Tool::GhOst {
            conn.query_drop(&on_shadow).await.unwrap();
        }
        n += 1;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    n
}

/// Copies `d.t` into the shadow in chunks of the key, as both tools do (gh-ost:
/// `insert /* gh-ost */ ignore into … (select … lock in share mode)`; pt-osc: `INSERT
/// LOW_PRIORITY IGNORE INTO … SELECT … LOCK IN SHARE MODE`), with a pause between chunks so
/// that the writer's changes fall between them. `from` is where to start; returns where it
/// stopped after `chunks` chunks.
async fn copy_chunks(db: &MariaDb, tool: Tool, from: i64, chunks: usize) -> i64 {
    let mut conn = db.conn().await.unwrap();
    let mut low = from;
    for _ in 0..chunks {
        let high = low + 40;
        let sql = match tool {
            Tool::GhOst => format!(
                "insert /* gh-ost `d`.`t` */ ignore into `d`.`_t_gho` (`id`, `a`, `b`) \
                 (select `id`, `a`, `b` from `d`.`t` force index (`PRIMARY`) \
                 where ((`id` >= {low}) and (`id` < {high})) lock in share mode)"
            ),
            Tool::PtOsc => format!(
                "INSERT LOW_PRIORITY IGNORE INTO `d`.`__t_new` (`id`, `b2`) \
                 SELECT `id`, `b` FROM `d`.`t` FORCE INDEX(`PRIMARY`) \
                 WHERE ((`id` >= '{low}')) AND ((`id` < '{high}')) LOCK IN SHARE MODE /*pt-online-schema-change 1 copy nibble*/"
            ),
        };
        conn.query_drop(sql).await.unwrap();
        low = high;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    low
}

/// gh-ost's changelog heartbeat (`_t_ghc`): rows the target must never see.
async fn heartbeat(db: &MariaDb, n: u32) {
    db.execute(&format!(
        "insert /* gh-ost */ into `d`.`_t_ghc` (id, hint, value) values (NULLIF(2, 2), 'heartbeat', '{n}') \
         on duplicate key update last_update=NOW(), value=VALUES(value)"
    ))
    .await
    .unwrap();
}

/// gh-ost up to its row copy: leftovers dropped, changelog, shadow created `LIKE` the
/// original and altered.
async fn gh_ost_prepare(db: &MariaDb) {
    db.execute(
        "drop /* gh-ost */ table if exists `d`.`_t_gho`; \
         drop /* gh-ost */ table if exists `d`.`_t_del`; \
         drop /* gh-ost */ table if exists `d`.`_t_ghc`; \
         create /* gh-ost */ table `d`.`_t_ghc` ( \
            id bigint unsigned auto_increment, \
            last_update timestamp not null DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, \
            hint varchar(64) charset ascii not null, \
            value varchar(4096) charset ascii not null, \
            primary key(id), \
            unique key hint_uidx(hint) \
         ) auto_increment=256 comment='gh-ost changelog'; \
         create /* gh-ost */ table `d`.`_t_gho` like `d`.`t`; \
         alter /* gh-ost */ table `d`.`_t_gho` add column c varchar(10), modify b bigint; \
         alter /* gh-ost */ table `d`.`_t_gho` AUTO_INCREMENT=1;",
    )
    .await
    .unwrap();
    heartbeat(db, 1).await;
}

/// gh-ost's atomic cut-over: the sentry `_t_del`, `lock tables` on one connection, the
/// `rename` blocked on another until the sentry is dropped and the tables unlocked; then
/// the leftovers dropped.
async fn gh_ost_cut_over(db: &MariaDb) {
    let mut lock = db.conn().await.unwrap();
    lock.query_drop(
        "create /* gh-ost */ table `d`.`_t_del` (id int auto_increment primary key) \
         engine=InnoDB comment='ghost-cut-over-sentry'",
    )
    .await
    .unwrap();
    lock.query_drop("lock /* gh-ost */ tables `d`.`t` write, `d`.`_t_del` write")
        .await
        .unwrap();
    let mut rename = db.conn().await.unwrap();
    let renamed = tokio::spawn(async move {
        rename
            .query_drop("set /* gh-ost */ session lock_wait_timeout:=10")
            .await
            .unwrap();
        rename
            .query_drop(
                "rename /* gh-ost */ table `d`.`t` to `d`.`_t_del`, `d`.`_t_gho` to `d`.`t`",
            )
            .await
            .unwrap();
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.query_drop("drop /* gh-ost */ table if exists `d`.`_t_del`")
        .await
        .unwrap();
    lock.query_drop("unlock /* gh-ost */ tables").await.unwrap();
    renamed.await.unwrap();
    db.execute(
        "drop /* gh-ost */ table if exists `d`.`_t_ghc`; \
         drop /* gh-ost */ table if exists `d`.`_t_del`;",
    )
    .await
    .unwrap();
}

/// Changes to the migrated table after its cut-over, in its new layout.
async fn after_cut_over(db: &MariaDb, sql: &str) {
    db.execute(sql).await.unwrap();
}

/// The shadow must equal the original when the tool swaps them (else the test itself is
/// wrong: rows after the cut-over would differ from what the target holds).
async fn assert_shadow_in_step(db: &MariaDb, shadow_columns: &str, shadow: &str) {
    let t = db
        .query_text("SELECT id, b FROM d.t ORDER BY id")
        .await
        .unwrap();
    let s = db
        .query_text(&format!(
            "SELECT {shadow_columns} FROM d.{shadow} ORDER BY id"
        ))
        .await
        .unwrap();
    assert_eq!(t, s, "the shadow {shadow} is not in step with d.t");
}

fn pipeline(yaml: &str, store: &Arc<MemoryStateStore>) -> PipelineHandle {
    harness::build_with_store(yaml, store).spawn()
}

async fn wait_rows(sink: &str, rows: usize, handle: &PipelineHandle) {
    let t = TableId::new("d", "t");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while harness::sink_rows(sink, &t).is_none_or(|r| r.len() < rows) {
        assert!(!handle.is_finished(), "the pipeline ended early");
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the target's `d.t` holds a row with this id.
async fn wait_id(sink: &str, id: i64, handle: &PipelineHandle) {
    let t = TableId::new("d", "t");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let id = id.to_string();
    while !harness::sink_rows(sink, &t).is_some_and(|r| r.iter().any(|row| row[0] == id)) {
        assert!(!handle.is_finished(), "the pipeline ended early");
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Replays the committed log of `d.t` strictly: schema changes reshape the replayed rows
/// (by column name), an insert never meets an existing key, an update or a delete always
/// finds exactly its before image. A lost or doubled change breaks one of these. Returns
/// the rows, as text, sorted, and the number of row changes.
fn replay(sink: &str) -> (Vec<Vec<String>>, usize) {
    let table = TableId::new("d", "t");
    let db = values_database(sink);
    let guard = db.lock().unwrap();
    let mut schema: Option<cdc_api::Schema> = None;
    let mut rows: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut changes = 0;
    let text = |r: &[cdc_api::Value]| r.iter().map(ToString::to_string).collect::<Vec<_>>();
    for (i, e) in guard.log.iter().enumerate() {
        match e {
            Event::SchemaChange(c) if *c.table_id() == table => {
                let next = match c {
                    SchemaChangeEvent::CreateTable { schema, .. } => schema.clone(),
                    SchemaChangeEvent::DropTable { .. }
                    | SchemaChangeEvent::TruncateTable { .. } => {
                        panic!("log entry {i}: {} of d.t", c.kind())
                    }
                    other => other
                        .apply_to(schema.as_ref().expect("a change before CreateTable"))
                        .unwrap(),
                };
                if let Some(before) = &schema {
                    let renamed: HashMap<&str, &str> = match c {
                        SchemaChangeEvent::RenameColumn { renames, .. } => renames
                            .iter()
                            .map(|(o, n)| (n.as_str(), o.as_str()))
                            .collect(),
                        _ => HashMap::new(),
                    };
                    let map: Vec<Option<usize>> = next
                        .columns
                        .iter()
                        .map(|col| {
                            let old = renamed.get(col.name.as_str()).copied();
                            before.column_index(old.unwrap_or(&col.name))
                        })
                        .collect();
                    for row in rows.values_mut() {
                        *row = map
                            .iter()
                            .map(|m| m.map_or_else(|| "NULL".into(), |i| row[i].clone()))
                            .collect();
                    }
                }
                schema = Some(next);
            }
            Event::DataChange(c) if c.table_id == table => {
                changes += 1;
                let keys = schema
                    .as_ref()
                    .expect("rows before CreateTable")
                    .primary_key_indexes();
                let key = |r: &[String]| {
                    keys.iter()
                        .map(|&k| r[k].clone())
                        .collect::<Vec<_>>()
                        .join("|")
                };
                if let (Some(before), true) = (&c.before, c.op != OperationType::Insert) {
                    let before = text(before);
                    let had = rows.remove(&key(&before));
                    assert_eq!(
                        had.as_ref(),
                        Some(&before),
                        "log entry {i} ({:?}): the before image is not the replayed row (a lost or doubled change)",
                        c.op
                    );
                }
                if let Some(after) = &c.after {
                    let after = text(after);
                    let k = key(&after);
                    assert!(
                        rows.insert(k.clone(), after).is_none(),
                        "log entry {i} ({:?}): key {k} is there already (a doubled row)",
                        c.op
                    );
                }
            }
            _ => {}
        }
    }
    let mut out: Vec<Vec<String>> = rows.into_values().collect();
    out.sort();
    (out, changes)
}

/// The schema changes of `d.t` in the committed log, and every table the log names.
fn logged(sink: &str) -> (Vec<String>, Vec<String>) {
    let db = values_database(sink);
    let guard = db.lock().unwrap();
    let t = TableId::new("d", "t");
    let mut tables: Vec<String> = Vec::new();
    let mut changes = Vec::new();
    for e in &guard.log {
        let id = match e {
            Event::SchemaChange(c) => {
                if *c.table_id() == t {
                    changes.push(c.kind().to_string());
                }
                c.table_id().clone()
            }
            Event::DataChange(c) => c.table_id.clone(),
        };
        let name = id.to_string();
        if !tables.contains(&name) {
            tables.push(name);
        }
    }
    (changes, tables)
}

/// What every test checks at the end: `d.t`'s schema changes are exactly `alter`, no
/// table of the tools appears, and the strict replay of the log equals the source.
async fn check(db: &MariaDb, sink: &str, alter: &[&str]) {
    let (changes, tables) = logged(sink);
    let mut want = vec!["create.table"];
    want.extend_from_slice(alter);
    assert_eq!(changes, want, "schema changes of d.t");
    assert_eq!(tables, ["d.t"], "only d.t reaches the target");
    let source = harness::source_rows(db, "d.t").await;
    let (replayed, n) = replay(sink);
    assert!(n > ROWS as usize, "{n} row changes");
    assert_eq!(replayed.len(), source.len());
    assert_eq!(replayed, source, "the replayed log differs from the source");
    assert_eq!(
        harness::sink_rows(sink, &TableId::new("d", "t")).unwrap(),
        source
    );
}

async fn stop(handle: PipelineHandle) {
    handle.stop();
    handle.join().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gh_ost_migration_reaches_the_target_as_its_alter() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    setup(&db).await;
    let sink = "osc_ghost";
    let store = Arc::new(MemoryStateStore::default());
    let handle = pipeline(&pipeline_yaml(&db, sink, 5701), &store);
    wait_rows(sink, ROWS as usize, &handle).await;

    gh_ost_prepare(&db).await;
    let halt = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write(db.url(), Tool::GhOst, 7, halt.clone()));
    let mut at = 0;
    for beat in 2..20 {
        at = copy_chunks(&db, Tool::GhOst, at, 1).await;
        heartbeat(&db, beat).await;
    }
    copy_chunks(&db, Tool::GhOst, at, 30).await;
    halt.store(true, Ordering::Relaxed);
    let writes = writer.await.unwrap();
    assert!(writes > 50, "{writes} writes during the copy");
    assert_shadow_in_step(&db, "id, b", "_t_gho").await;
    gh_ost_cut_over(&db).await;
    after_cut_over(
        &db,
        "INSERT INTO d.t (id, a, b, c) VALUES (100000, 'after', 5000000000, 'new'); \
         UPDATE d.t SET c = 'set', b = b + 1 WHERE id IN (2, 4, 6); \
         DELETE FROM d.t WHERE id = 8;",
    )
    .await;
    wait_id(sink, 100_000, &handle).await;
    harness::wait_equal(&db, sink, &["d.t"], Some(&handle), Duration::from_secs(60)).await;
    stop(handle).await;
    check(&db, sink, &["add.column", "alter.column.type"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pt_osc_migration_reaches_the_target_as_its_alter() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    setup(&db).await;
    let sink = "osc_ptosc";
    let store = Arc::new(MemoryStateStore::default());
    let handle = pipeline(&pipeline_yaml(&db, sink, 5702), &store);
    wait_rows(sink, ROWS as usize, &handle).await;

    // create_new_table: the original's SHOW CREATE TABLE under the new name (two leading
    // underscores, as when `_t_new` is taken), not LIKE.
    let show = db.query_text("SHOW CREATE TABLE d.t").await.unwrap();
    let create = show[0][1].clone().unwrap();
    let create = create.replacen("CREATE TABLE `t`", "CREATE TABLE `d`.`__t_new`", 1);
    assert!(create.contains("`__t_new`"), "{create}");
    db.execute(&format!(
        "CREATE TABLE `d`.`_t_new` (x INT); {create}; \
         ALTER TABLE `d`.`__t_new` DROP COLUMN a, CHANGE b b2 BIGINT, ADD COLUMN c VARCHAR(10);"
    ))
    .await
    .unwrap();
    // create_triggers: each change of `t` is repeated in `__t_new` by a trigger.
    for sql in [
        "CREATE TRIGGER `pt_osc_d_t_del` AFTER DELETE ON `d`.`t` FOR EACH ROW BEGIN DECLARE CONTINUE HANDLER FOR 1146 begin end; \
         DELETE IGNORE FROM `d`.`__t_new` WHERE `d`.`__t_new`.`id` <=> OLD.`id`; END ",
        "CREATE TRIGGER `pt_osc_d_t_upd` AFTER UPDATE ON `d`.`t` FOR EACH ROW BEGIN DECLARE CONTINUE HANDLER FOR 1146 begin end; \
         DELETE IGNORE FROM `d`.`__t_new` WHERE !(OLD.`id` <=> NEW.`id`) AND `d`.`__t_new`.`id` <=> OLD.`id`; \
         REPLACE INTO `d`.`__t_new` (`id`, `b2`) VALUES (NEW.`id`, NEW.`b`); END ",
        "CREATE TRIGGER `pt_osc_d_t_ins` AFTER INSERT ON `d`.`t` FOR EACH ROW BEGIN DECLARE CONTINUE HANDLER FOR 1146 begin end; \
         REPLACE INTO `d`.`__t_new` (`id`, `b2`) VALUES (NEW.`id`, NEW.`b`);END ",
    ] {
        // pt-osc's connection has the table's database selected (its DSN's `D`).
        db.execute(&format!("USE d; {sql}")).await.unwrap();
    }
    let halt = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write(db.url(), Tool::PtOsc, 11, halt.clone()));
    copy_chunks(&db, Tool::PtOsc, 0, 50).await;
    halt.store(true, Ordering::Relaxed);
    let writes = writer.await.unwrap();
    assert!(writes > 50, "{writes} writes during the copy");
    assert_shadow_in_step(&db, "id, b2", "__t_new").await;
    db.execute(
        "ANALYZE TABLE `d`.`__t_new` /* pt-online-schema-change */; \
         RENAME TABLE `d`.`t` TO `d`.`_t_old`, `d`.`__t_new` TO `d`.`t`; \
         DROP TABLE IF EXISTS `d`.`_t_old`; \
         DROP TRIGGER IF EXISTS `d`.`pt_osc_d_t_del`; \
         DROP TRIGGER IF EXISTS `d`.`pt_osc_d_t_upd`; \
         DROP TRIGGER IF EXISTS `d`.`pt_osc_d_t_ins`; \
         DROP TABLE `d`.`_t_new`;",
    )
    .await
    .unwrap();
    after_cut_over(
        &db,
        "INSERT INTO d.t (id, b2, c) VALUES (100000, 5000000000, 'new'); \
         UPDATE d.t SET c = 'set', b2 = b2 + 1 WHERE id IN (2, 4, 6); \
         DELETE FROM d.t WHERE id = 8;",
    )
    .await;
    wait_id(sink, 100_000, &handle).await;
    harness::wait_equal(&db, sink, &["d.t"], Some(&handle), Duration::from_secs(60)).await;
    stop(handle).await;
    check(
        &db,
        sink,
        &[
            "drop.column",
            "rename.column",
            "alter.column.type",
            "add.column",
        ],
    )
    .await;
}

/// The pipeline stops after the shadow's ALTER, in the middle of the copy, and resumes
/// from its checkpoint: the shadow's definition and pending ALTER come back from the
/// offset, and the cut-over is still the ALTER (without them it would be a drop, a create
/// and a copy of the table).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_a_migration_keeps_it() {
    let Some(db) = MariaDb::start_or_skip().await else {
        return;
    };
    setup(&db).await;
    let sink = "osc_restart";
    let yaml = pipeline_yaml(&db, sink, 5703);
    let store = Arc::new(MemoryStateStore::default());
    let handle = pipeline(&yaml, &store);
    wait_rows(sink, ROWS as usize, &handle).await;

    gh_ost_prepare(&db).await;
    let halt = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write(db.url(), Tool::GhOst, 13, halt.clone()));
    let at = copy_chunks(&db, Tool::GhOst, 0, 6).await;
    // A marker after the ALTER: once the target has it, the checkpoint is past the ALTER.
    db.execute("INSERT INTO d.t (id, a, b) VALUES (99999, 'marker', 1); REPLACE INTO d._t_gho (id, a, b) VALUES (99999, 'marker', 1);")
        .await
        .unwrap();
    wait_id(sink, 99_999, &handle).await;
    stop(handle).await;

    // The migration goes on while the pipeline is down.
    let at = copy_chunks(&db, Tool::GhOst, at, 6).await;
    let handle = pipeline(&yaml, &store);
    copy_chunks(&db, Tool::GhOst, at, 20).await;
    halt.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert_shadow_in_step(&db, "id, b", "_t_gho").await;
    gh_ost_cut_over(&db).await;
    after_cut_over(
        &db,
        "INSERT INTO d.t (id, a, b, c) VALUES (100000, 'after', 5000000000, 'new'); \
         UPDATE d.t SET c = 'set' WHERE id = 99999;",
    )
    .await;
    wait_id(sink, 100_000, &handle).await;
    harness::wait_equal(&db, sink, &["d.t"], Some(&handle), Duration::from_secs(60)).await;
    stop(handle).await;
    check(&db, sink, &["add.column", "alter.column.type"]).await;
}
