//! srs-proxy as a library: the parts of the binary that are pure enough to
//! test on their own. `src/main.rs` wires them to the runtime.

pub mod config;
