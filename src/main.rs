//! The `talstrap` binary: a thin shell over the library (work in progress).
fn main() {
    println!("talstrap");
}
