//! The examples' code runs in CI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[tokio::test]
async fn custom_connectors_run_from_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let lines = cdc_examples::custom::run_ticker_to_jsonl(dir.path(), 4)
        .await
        .unwrap();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[3], r#"{"op":"+I","row":{"n":"3","label":"tick 3"}}"#);
}

#[tokio::test]
async fn an_embedded_pipeline_stops_cleanly() {
    let summary = cdc_examples::embed::run_in_background(5).await.unwrap();
    assert_eq!(summary.data_changes, 5);
    assert!(summary.checkpoints >= 1);
}
