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
    let mut build = tonic_prost_build::configure()
        .type_attribute(".vmrm.v1", "#[derive(serde::Serialize)]")
        .enum_attribute(".vmrm.v1", "#[serde(rename_all = \"SCREAMING_SNAKE_CASE\")]")
        // Page data is handed through without a copy on decode.
        .bytes(".vmrm.v1.MigrationPages.pages");
    // An enum field is an i32 in the generated struct; JSON (ksysmgr -o json) shows its name.
    for (field, serializer) in enum_fields(&fds) {
        build = build.field_attribute(field, format!("#[serde(serialize_with = \"{serializer}\")]"));
    }
    build.compile_fds(fds)?;
    Ok(())
}

/// Every enum-typed field of `vmrm.v1` with the function that serializes it by name.
fn enum_fields(fds: &prost_types::FileDescriptorSet) -> Vec<(String, String)> {
    use prost_types::field_descriptor_proto::{Label, Type};
    let mut out = Vec::new();
    for file in &fds.file {
        for message in &file.message_type {
            for field in &message.field {
                if field.r#type() != Type::Enum {
                    continue;
                }
                let wire = field.type_name().rsplit('.').next().unwrap_or_default();
                let shape = match (field.label(), field.proto3_optional()) {
                    (Label::Repeated, _) => "enum_names",
                    (_, true) => "optional_enum_name",
                    _ => "enum_name",
                };
                let path = format!(".vmrm.v1.{}.{}", message.name(), field.name());
                out.push((path, format!("crate::pb::json::{shape}::<crate::pb::{wire}, _>")));
            }
        }
    }
    out
}
