//! Contract tests over HTTP: every request goes through reqwest (or, in `google_client`, Google's own
//! Python client library) to a fake on an ephemeral port.

mod binary;
mod common;
mod constraints;
mod dataplane;
mod google_client;
mod journal;
mod knobs;
mod lists;
mod metadata;
mod negs;
mod operations;
mod references;
mod resources;
mod transcript;
