//! Embedding a pipeline in a tokio program: build it from YAML with your own registry, run
//! it in the background, watch its metrics, stop it cleanly and read the outcome.

use std::time::Duration;

use cdc_runtime::{Pipeline, PipelineDefinition, RunSummary};

/// Runs a values -> values pipeline in the background, stops it once `rows` changes were
/// delivered and returns the summary (exactly what an embedding service would do).
pub async fn run_in_background(rows: u64) -> Result<RunSummary, Box<dyn std::error::Error>> {
    let yaml = r"
source: {type: values, event-set: single-table, unbounded: true}
sink: {type: values, sink-id: embedded}
pipeline: {name: embedded-demo, checkpoint.interval: 200ms, state.dir: none}
";
    // `state.dir: none` keeps this demo's checkpoints in memory. A service leaves it out
    // (its state then goes to a directory derived from the pipeline's name, kept across
    // restarts) or names its own directory.
    let definition = PipelineDefinition::from_yaml_str(yaml, "embedded.yaml")?;
    // Your own connectors go into the registry with register_source / register_sink.
    let registry = cdc_testkit::test_registry();
    let handle = Pipeline::build(&definition, &registry)?.spawn();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // Observe progress through the metrics the pipeline keeps.
    while handle.metrics().total_changes() < rows || handle.metrics().checkpoints() == 0 {
        if handle.is_finished() || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A clean stop: a final checkpoint, then the outcome.
    handle.stop();
    Ok(handle.join().await?)
}
