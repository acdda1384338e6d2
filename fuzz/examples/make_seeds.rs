//! Writes the seed corpora: `cargo run --example make_seeds [DIR]` (from
//! `fuzz/`) fills `DIR/<target>/` (default `corpus/`) with the realistic
//! inputs of `talstrap_fuzz::seeds`. Corpora are not committed; run this
//! before the first `cargo fuzz run`.

use std::path::PathBuf;

use talstrap_fuzz::seeds;

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));
    let pki = seeds::Pki::new();
    let sets = [
        ("talconfig", seeds::talconfig()),
        ("machine_config", seeds::machine_configs(&pki)),
        ("talosconfig", seeds::talosconfigs(&pki)),
        ("targets", seeds::targets()),
        ("kubeconfig", seeds::kubeconfigs()),
    ];
    for (target, inputs) in sets {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        for (name, bytes) in &inputs {
            std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
        }
        println!("{}: {} seeds", dir.display(), inputs.len());
    }
    // disksel inputs are `arbitrary`-structured; libFuzzer starts it empty.
    std::fs::create_dir_all(root.join("disksel"))?;
    Ok(())
}
