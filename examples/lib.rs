//! Runnable examples (`cargo run -p cdc-examples --example ...`); the code they share lives
//! here so CI runs it as tests too.

pub mod custom;
pub mod embed;
