//! Fuzzes the scan-target parser (`discovery::parse_targets`) and walks the
//! first addresses of what it accepts. Nothing is dialled.
#![no_main]

use libfuzzer_sys::fuzz_target;
use talstrap_fuzz::harness::{check_targets, split_targets_input};

fuzz_target!(|data: &[u8]| {
    if let Some((args, allow_large)) = split_targets_input(data) {
        check_targets(&args, allow_large);
    }
});
