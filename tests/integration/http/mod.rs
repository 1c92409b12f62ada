//! sonde's own HTTP/1.1, HTTP/2 and TLS client against real local servers.
mod errors;
mod h1_review;
mod h1_wire;
mod h2_streams;
mod newconn;
mod phases;
mod tls;
mod tls_certs;
