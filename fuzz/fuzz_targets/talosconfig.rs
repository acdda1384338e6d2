//! Fuzzes the talosconfig reader (`talos::talosconfig::parse`): the first
//! byte picks the `context` argument, the rest is the file text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use talstrap_fuzz::harness::{check_talosconfig, split_talosconfig_input};

fuzz_target!(|data: &[u8]| {
    if let Some((text, context)) = split_talosconfig_input(data) {
        check_talosconfig(&text, context.as_deref());
    }
});
