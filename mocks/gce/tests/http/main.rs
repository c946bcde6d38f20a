//! Contract tests over HTTP: every request goes through reqwest to a fake on an ephemeral port.

mod binary;
mod common;
mod journal;
mod knobs;
mod lists;
mod metadata;
mod operations;
mod resources;
mod transcript;
