//! Generates the gRPC server code from the protocol files in `proto/`: Terraform's plugin
//! protocol 6 (`tfplugin6.proto`, vendored as HashiCorp publishes it) and the two go-plugin
//! services Terraform also calls. protox compiles them in Rust, so a fresh machine needs no
//! `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/tfplugin6.proto",
        "proto/go_plugin.proto",
        "proto/health.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(false)
        // The protocol has calls for what keyward does not offer (ephemeral resources,
        // functions, identities): they answer "unimplemented".
        .generate_default_stubs(true)
        .compile_fds(descriptors)?;
    Ok(())
}
