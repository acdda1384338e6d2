//! Fuzzes the simulator's scenario reader and the scaling of every duration
//! it accepts. The first byte picks the time scale; the rest is the YAML.
#![no_main]

use libfuzzer_sys::fuzz_target;
use talstrap_fuzz::harness::{SCENARIO_SCALES, check_scenario};

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let scale = SCENARIO_SCALES[usize::from(*first) % SCENARIO_SCALES.len()];
    check_scenario(&String::from_utf8_lossy(rest), scale);
});
