//! `sonde import`: curl command lines and HAR files, environments, and the imported plans on
//! the wire.
mod curl;
mod env;
mod har;
mod wire;
