//! Embeds a pipeline in a tokio program: build it from YAML with your own registry, run it
//! in the background, stop it cleanly and read the outcome.
//!
//! `cargo run -p cdc-examples --example embed_pipeline`

use cdc_runtime::{Pipeline, PipelineDefinition};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let yaml = r"
source: {type: values, event-set: single-table}
sink: {type: values, sink-id: embedded}
pipeline: {name: embedded-demo, checkpoint.interval: 1s}
";
    let definition = PipelineDefinition::from_yaml_str(yaml, "embedded.yaml")?;
    // Your own connectors go into the registry with register_source / register_sink.
    let registry = cdc_testkit::test_registry();
    let handle = Pipeline::build(&definition, &registry)?.spawn();
    let summary = handle.join().await?;
    println!(
        "{} data changes, {} checkpoints",
        summary.data_changes, summary.checkpoints
    );
    let db = cdc_testkit::values_database("embedded");
    let db = db.lock().map_err(|_| "poisoned")?;
    for (table, contents) in &db.tables {
        println!("{table}: {:?}", contents.sorted_text_rows());
    }
    Ok(())
}
