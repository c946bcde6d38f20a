//! Contract tests over HTTP: every request goes through reqwest to a fake on an ephemeral port.

mod common;
mod resources;
mod transcript;
