//! Fuzzes the machine config reader (`MachineConfig::parse`) on raw bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    talstrap_fuzz::harness::check_machine_config(data);
});
