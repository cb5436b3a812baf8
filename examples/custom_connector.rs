//! A custom source and a custom sink written against `cdc-api`, registered with one call
//! each and run from YAML: a `ticker` source that emits numbered rows and a `jsonl` sink
//! that appends each change as one JSON line to a file per table.
//!
//! `cargo run -p cdc-examples --example custom_connector`

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join("cdc-custom-connector-example");
    let _ = std::fs::remove_dir_all(&dir);
    let lines = cdc_examples::custom::run_ticker_to_jsonl(&dir, 5).await?;
    for line in lines {
        println!("{line}");
    }
    println!("(files in {})", dir.display());
    Ok(())
}
