//! `make bench-coldstart`: cold starts of the release function binaries under a local
//! Lambda Runtime API emulator (issue #13; see `local_stack::coldstart`).
//!
//! Usage: `coldstart [--runs N] [--bin-dir DIR] [--events-dir DIR] [--logs DIR] [FUNCTION…]`
//! (defaults: 5 runs, `target/release`, `events/`, `target/coldstart`, all five functions).
//! Prints one row per function: init ms and first invocation ms (medians, init with
//! its range), how the invocation ended, the AWS calls the stub refused, and the
//! binary's size as built and stripped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use local_stack::coldstart::{
    ColdStartError, FUNCTIONS, FunctionSpec, Run, event_bytes, mb, median, ms, run_once, sizes,
};

/// The goal for init.
const INIT_GOAL: Duration = Duration::from_millis(50);
/// The goal for a stripped arm64 binary, in bytes.
const SIZE_GOAL: u64 = 10_000_000;

struct Options {
    runs: usize,
    bin_dir: PathBuf,
    events_dir: PathBuf,
    logs: PathBuf,
    only: Vec<String>,
}

fn usage(problem: &str) -> Box<dyn std::error::Error> {
    format!(
        "{problem}\nusage: coldstart [--runs N] [--bin-dir DIR] [--events-dir DIR] [--logs DIR] [FUNCTION...]"
    )
    .into()
}

fn options() -> Result<Options, Box<dyn std::error::Error>> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().unwrap_or(manifest).to_path_buf();
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let mut options = Options {
        runs: 5,
        bin_dir: target.join("release"),
        events_dir: root.join("events"),
        logs: target.join("coldstart"),
        only: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--runs" => {
                options.runs = value()?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| usage("--runs must be a positive number"))?;
            }
            "--bin-dir" => options.bin_dir = value()?.into(),
            "--events-dir" => options.events_dir = value()?.into(),
            "--logs" => options.logs = value()?.into(),
            name if FUNCTIONS.iter().any(|f| f.name == name) => options.only.push(arg),
            other => return Err(usage(&format!("unknown argument {other}"))),
        }
    }
    Ok(options)
}

/// One table row: the function's runs summarised.
async fn row(spec: &FunctionSpec, options: &Options) -> Result<String, ColdStartError> {
    let binary = options.bin_dir.join(spec.name);
    let event = event_bytes(spec, &options.events_dir)?;
    let log = options.logs.join(format!("{}.log", spec.name));
    let mut runs: Vec<Run> = Vec::with_capacity(options.runs);
    for _ in 0..options.runs {
        runs.push(run_once(spec, &binary, event.clone(), &log).await?);
    }
    let inits: Vec<Duration> = runs.iter().map(|r| r.init).collect();
    let firsts: Vec<Duration> = runs.iter().filter_map(|r| r.first_invocation).collect();
    let (min, max) = (inits.iter().min(), inits.iter().max());
    let init = match (median(&inits), min, max) {
        (Some(mid), Some(min), Some(max)) => format!("{} ({}–{})", ms(mid), ms(*min), ms(*max)),
        _ => "-".to_owned(),
    };
    let mut outcomes: Vec<&str> = runs.iter().map(|r| r.outcome.as_str()).collect();
    outcomes.dedup();
    let first = match median(&firsts) {
        Some(mid) => format!("{} ({})", ms(mid), outcomes.join(" / ")),
        None => format!("- ({})", outcomes.join(" / ")),
    };
    let calls = runs.iter().map(|r| r.aws_calls).max().unwrap_or(0);
    let size = sizes(&binary, &options.logs)?;
    let stripped = size.stripped.map_or_else(|| "-".to_owned(), mb);
    let init_ok = median(&inits).is_some_and(|m| m <= INIT_GOAL);
    let size_ok = size.stripped.unwrap_or(size.bytes) <= SIZE_GOAL;
    let verdict = |ok: bool| if ok { "ok" } else { "over" };
    let verdict = format!("init {}, size {}", verdict(init_ok), verdict(size_ok));
    Ok(format!(
        "{:<14} | {:<22} | {:<34} | {:>9} | {:>6} ({:>8} B) | {:>11} | {verdict}",
        spec.name,
        init,
        first,
        calls,
        mb(size.bytes),
        size.bytes,
        stripped,
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options()?;
    std::fs::create_dir_all(&options.logs)?;
    println!(
        "Cold starts under the local Runtime API emulator: {} runs per function, medians; \
         binaries from {} (host {}); logs in {}",
        options.runs,
        options.bin_dir.display(),
        std::env::consts::ARCH,
        options.logs.display(),
    );
    println!(
        "{:<14} | {:<22} | {:<34} | {:>9} | {:<19} | {:>11} | goal (init ≤ 50 ms, ≤ 10 MB)",
        "function",
        "init ms (min–max)",
        "first invocation ms (outcome)",
        "AWS calls",
        "size MB (bytes)",
        "stripped MB",
    );
    let mut failed = false;
    for spec in FUNCTIONS {
        if !options.only.is_empty() && !options.only.iter().any(|n| n == spec.name) {
            continue;
        }
        match row(spec, &options).await {
            Ok(line) => println!("{line}"),
            Err(e) => {
                failed = true;
                println!("{:<14} | failed: {e}", spec.name);
            }
        }
    }
    if failed {
        return Err("some functions could not be measured".into());
    }
    Ok(())
}
