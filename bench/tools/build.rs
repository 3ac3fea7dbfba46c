//! The build-dependency only makes cargo download the protoc binary that
//! ../../tools/protoc runs.
fn main() {}
