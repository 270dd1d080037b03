//! Compiles `proto/vmrm/v1/*.proto` with the pure-Rust `protox` compiler (no system `protoc`)
//! and writes the descriptor set that the reflection service publishes.
use prost::Message;
use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = "proto/vmrm/v1";
    let mut files: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    files.sort();
    // The directory too: a new proto file is compiled as well.
    println!("cargo:rerun-if-changed={dir}");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("vmrm_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .type_attribute(".vmrm.v1", "#[derive(serde::Serialize)]")
        // Page data is handed through without a copy on decode.
        .bytes(".vmrm.v1.MigrationPages.pages")
        .compile_fds(fds)?;
    Ok(())
}
