//! The Redis balancer's IO: one connection per core ([`client`]) and the
//! balancer on top of it ([`balancer`]); the schema and scripts are in
//! `srs_lb::redis`.

pub mod balancer;
pub mod client;

pub use balancer::RedisBalancer;
