//! The generated protocol code (see `build.rs`): Terraform's plugin protocol 6.9, and the two
//! go-plugin services Terraform calls besides it.

#![allow(clippy::all, clippy::pedantic, missing_debug_implementations)]

/// Terraform plugin protocol 6.9 (`proto/tfplugin6.proto`).
pub mod tfplugin6 {
    tonic::include_proto!("tfplugin6");
}

/// go-plugin's controller: Terraform asks the plugin to shut down through it.
pub mod plugin {
    tonic::include_proto!("plugin");
}

/// The standard gRPC health service, which go-plugin's ping calls.
pub mod health {
    tonic::include_proto!("grpc.health.v1");
}
