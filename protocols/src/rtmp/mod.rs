//! RTMP: handshake, chunk stream, AMF0 and the command messages the proxy
//! needs to learn a stream's name and to talk to an origin as a client.

pub mod amf0;
pub mod chunk;
pub mod command;
pub mod handshake;
