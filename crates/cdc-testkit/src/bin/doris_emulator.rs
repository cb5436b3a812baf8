//! `doris-emulator`: starts the in-process Doris FE + BE emulator and prints its addresses.
//!
//! ```text
//! doris-emulator [--user NAME --password PW] [--precommit-timeout-secs N] [--backends N]
//! ```
//! Prints `fenodes=127.0.0.1:PORT` and `benodes=127.0.0.1:PORT[,127.0.0.1:PORT...]` (one
//! address per BE), then serves until Ctrl-C.

use std::time::Duration;

use cdc_testkit::{DorisEmulator, DorisEmulatorOptions};

fn usage() -> ! {
    eprintln!(
        "usage: doris-emulator [--user NAME] [--password PW] [--precommit-timeout-secs N] [--backends N]"
    );
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut options = DorisEmulatorOptions::default();
    let mut user = "root".to_string();
    let mut password = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--user" => user = value,
            "--password" => password = value,
            "--precommit-timeout-secs" => {
                let secs: u64 = value.parse().unwrap_or_else(|_| usage());
                options.precommit_timeout = Duration::from_secs(secs);
            }
            "--backends" => {
                options.backends = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .unwrap_or_else(|| usage());
            }
            _ => usage(),
        }
    }
    options.users = vec![(user, password)];
    let emulator = match DorisEmulator::start_with(options).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("doris-emulator: {e}");
            std::process::exit(1);
        }
    };
    println!("fenodes={}", emulator.fe_address());
    println!("benodes={}", emulator.be_addresses().join(","));
    let _ = tokio::signal::ctrl_c().await;
}
