//! Fuzzes the command line (clap and every value parser: durations, counts,
//! time scales, enums) with NUL-separated arguments. Nothing runs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use talstrap_fuzz::harness::{check_cli, split_cli_input};

fuzz_target!(|data: &[u8]| {
    check_cli(&split_cli_input(data));
});
