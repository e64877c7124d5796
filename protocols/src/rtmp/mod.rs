//! RTMP: handshake, chunk stream, AMF0, the command messages, and the two
//! session roles the proxy plays (server to the client, client to the origin).

pub mod amf0;
pub mod chunk;
pub mod client;
pub mod command;
pub mod handshake;
pub mod server;
pub mod session;
