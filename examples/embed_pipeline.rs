//! Embeds a pipeline in a tokio program: build it from YAML with your own registry, run it
//! in the background, observe it, stop it cleanly and read the outcome.
//!
//! `cargo run -p cdc-examples --example embed_pipeline`

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let summary = cdc_examples::embed::run_in_background(5).await?;
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
