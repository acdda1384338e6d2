//! Fuzzes install-disk selection: `parse_size_expr`, `glob_match` and
//! `select_disks` with structured selectors and disks built by `arbitrary`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use talstrap::disksel::{DiskFacts, DiskSelector};
use talstrap_fuzz::harness::check_disksel;

#[derive(Debug, Arbitrary)]
struct Selector {
    size: Option<String>,
    name: Option<String>,
    model: Option<String>,
    serial: Option<String>,
    modalias: Option<String>,
    uuid: Option<String>,
    wwid: Option<String>,
    disk_type: Option<String>,
    bus_path: Option<String>,
}

#[derive(Debug, Arbitrary)]
struct Disk {
    dev_path: String,
    size: u64,
    model: String,
    serial: String,
    modalias: String,
    uuid: String,
    wwid: String,
    bus_path: String,
    transport: String,
    rotational: bool,
    readonly: bool,
    cdrom: bool,
}

#[derive(Debug, Arbitrary)]
struct Input {
    size_expr: String,
    pattern: String,
    subject: String,
    selector: Selector,
    disks: Vec<Disk>,
}

fuzz_target!(|input: Input| {
    let s = input.selector;
    let sel = DiskSelector {
        size: s.size,
        name: s.name,
        model: s.model,
        serial: s.serial,
        modalias: s.modalias,
        uuid: s.uuid,
        wwid: s.wwid,
        disk_type: s.disk_type,
        bus_path: s.bus_path,
    };
    let disks: Vec<DiskFacts> = input
        .disks
        .into_iter()
        .take(16)
        .map(|d| DiskFacts {
            dev_path: d.dev_path,
            size: d.size,
            model: d.model,
            serial: d.serial,
            modalias: d.modalias,
            uuid: d.uuid,
            wwid: d.wwid,
            bus_path: d.bus_path,
            transport: d.transport,
            rotational: d.rotational,
            readonly: d.readonly,
            cdrom: d.cdrom,
        })
        .collect();
    check_disksel(
        &input.size_expr,
        &input.pattern,
        &input.subject,
        &sel,
        &disks,
    );
});
