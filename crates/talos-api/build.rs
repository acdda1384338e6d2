//! Compiles the hand-written Talos API subset in `proto/` with protox (a
//! protobuf compiler written in Rust), so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "../../proto/common/common.proto",
        "../../proto/machine/machine.proto",
        "../../proto/storage/storage.proto",
        "../../proto/cosi/resource.proto",
        "../../proto/resource/definitions.proto",
    ];
    println!("cargo:rerun-if-changed=../../proto");
    let fds = protox::compile(files, ["../../proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .include_file("talos_api.rs")
        .compile_fds(fds)?;
    Ok(())
}
