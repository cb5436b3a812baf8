//! Runnable examples: see the `[[example]]` targets (`cargo run -p cdc-examples --example ...`).
