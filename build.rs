//! Nothing is generated here: the build-dependency on `protoc-bin-vendored`
//! exists so that cargo downloads the protoc binary that `tools/protoc` runs
//! when etcd-client compiles its protobufs.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}
