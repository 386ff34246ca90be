//! Relinks `podid-agent` when `startup.order` changes. That file is the linker's symbol ordering
//! file for the node agent's image build (`--symbol-ordering-file`, given in `RUSTFLAGS`: see
//! docs/agent.md); cargo tracks `RUSTFLAGS` but not the files they name.
#![forbid(unsafe_code)]

fn main() {
    println!("cargo::rerun-if-changed=startup.order");
}
