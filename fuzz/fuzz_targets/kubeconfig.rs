//! Fuzzes the kubeconfig archive reader (`extract_kubeconfig`): mode byte
//! 0 passes the rest as the gzip payload; any other value gzips the rest
//! first, so mutations reach the tar header parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use talstrap_fuzz::harness::{check_kubeconfig, gzip};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        check_kubeconfig(rest);
    } else {
        check_kubeconfig(&gzip(rest));
    }
});
