//! Fuzzes the talconfig reader: talconfig.yaml text (and, after a NUL
//! byte, talenv.yaml text) through env substitution, YAML, validation,
//! filename templates and the machine configs it points at.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use talstrap_fuzz::harness::{TalconfigDir, check_talconfig, split_at_nul};
use talstrap_fuzz::seeds::{Pki, clusterconfig};

static DIR: OnceLock<TalconfigDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| {
        TalconfigDir::new(&clusterconfig(&Pki::new())).expect("create the fuzz project directory")
    });
    let (talconfig, talenv) = split_at_nul(data);
    check_talconfig(dir, talconfig, talenv);
});
